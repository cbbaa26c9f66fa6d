// Istio's SDS secret names, which Tandem's resources use to mean "the workload's own
// certificate" and "the mesh root": the control plane writes them, the sidecar reads them.
export const SDS_WORKLOAD_CERT = 'default';
export const SDS_ROOT_CA = 'ROOTCA';
