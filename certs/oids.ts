// Object identifiers used by the mesh's certificates, requests and names.

/**
 * The services a workload may serve, as a SEQUENCE OF UTF8String. A UUID-based OID
 * (ITU-T X.667, 2.25.<uuid as integer>): free to use without registering anything.
 */
export const SERVICES_EXTENSION_OID = '2.25.240046131036377447766101573446440245217';

export const OID = {
  // algorithms
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  // names
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
  // PKCS#9
  extensionRequest: '1.2.840.113549.1.9.14',
  // extensions
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;
