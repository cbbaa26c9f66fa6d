// A resource the sidecar cannot apply, naming the resource and the field: it becomes a NACK.
export class DecodeError extends Error {
  readonly code = 'XDS_DECODE';
  constructor(
    readonly resource: string,
    readonly field: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${resource}: ${field}: ${detail}`, options);
  }
}
