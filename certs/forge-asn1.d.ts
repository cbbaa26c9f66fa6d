// node-forge's DER codec alone: its index loads every cipher, PKI and TLS module (11 MB of a
// sidecar's RSS), while lib/asn1 pulls in only util and oids (1 MB).
declare module 'node-forge/lib/asn1' {
  import type forge from 'node-forge';
  type Asn1Module = typeof forge.asn1 & {
    // forge 1.x takes an options object; its typings only know the old boolean form.
    fromDer(bytes: string, options: { strict: boolean; parseAllBytes: boolean; decodeBitStrings: boolean }): forge.asn1.Asn1;
  };
  const asn1: Asn1Module;
  export = asn1;
}
