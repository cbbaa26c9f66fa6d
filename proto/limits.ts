// Sizes both ends of the ADS stream agree on. The sidecar refuses a larger message with
// RESOURCE_EXHAUSTED and the stream ends, so the control plane measures every response a
// config would make against the same figure and refuses the config at load instead.

/** The largest DiscoveryResponse a sidecar takes: gRPC's own default, set explicitly. */
export const MAX_XDS_MESSAGE_BYTES = 4 * 1024 * 1024;
