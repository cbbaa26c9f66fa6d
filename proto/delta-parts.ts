// A Delta push too large for one message (MAX_XDS_MESSAGE_BYTES) goes as several
// DeltaDiscoveryResponses, its parts, each with its own nonce and answered on its own. The
// protocol has no word for "more of this follows", and a Tandem sidecar must not put half a
// route table in force (the virtual hosts of the later parts would answer 404 meanwhile), so
// every part but the last says so in `system_version_info`: "<version> (part 1 of 3)". Envoy
// reads that field only for debugging; a client that does not know the convention applies
// each part as it comes, as the protocol allows. The last part carries the version alone.

const PART = / \(part (\d+) of (\d+)\)$/;

/** The `system_version_info` of part `part` (from 1) of `parts`. */
export function partVersion(version: string, part: number, parts: number): string {
  return part < parts ? `${version} (part ${part} of ${parts})` : version;
}

/** Whether more parts of the same push follow the response with this `system_version_info`. */
export function morePartsFollow(systemVersionInfo: string | undefined): boolean {
  const m = PART.exec(systemVersionInfo ?? '');
  return m !== null && Number(m[1]) < Number(m[2]);
}
