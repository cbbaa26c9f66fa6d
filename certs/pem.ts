// PEM armour for the structures Node has no parser for (certification requests).

export function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * The DER inside exactly one PEM block of this label, or a reason why not. Strict on the
 * base64 (a lenient decoder would hand garbage to the DER parser with a worse message).
 */
export function fromPem(label: string, text: string): Buffer | string {
  const m = /^\s*-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END \1-----\s*$/.exec(text);
  if (!m) return `not a single PEM block`;
  if (m[1] !== label) return `PEM block is "${m[1]}", expected "${label}"`;
  const b64 = m[2].replace(/\r?\n/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) return 'bad base64 in PEM block';
  const der = Buffer.from(b64, 'base64');
  if (der.length === 0) return 'empty PEM block';
  return der;
}
