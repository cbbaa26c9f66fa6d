// How much config the control plane reads at all. Parsing YAML takes about half a second
// per MiB of one core here, and the event loop that answers sidecars' keepalives waits
// for it; so size is refused from the file system's own figures, before a byte is read.

/**
 * One file: a Kubernetes object is at most 1.5 MiB (etcd's request limit), a ConfigMap at
 * most 1 MiB; eight leave room for a `kubectl get -o yaml` of several thousand resources.
 */
export const MAX_CONFIG_FILE_BYTES = 8 * 1024 * 1024;

/** Every file of a config directory together. */
export const MAX_CONFIG_TOTAL_BYTES = 16 * 1024 * 1024;

/** YAML documents in one file, counted from their `---` markers before parsing. */
export const MAX_DOCUMENTS_PER_FILE = 10_000;

export interface ConfigLimits {
  fileBytes: number;
  totalBytes: number;
  documentsPerFile: number;
}

export const CONFIG_LIMITS: ConfigLimits = {
  fileBytes: MAX_CONFIG_FILE_BYTES,
  totalBytes: MAX_CONFIG_TOTAL_BYTES,
  documentsPerFile: MAX_DOCUMENTS_PER_FILE,
};
