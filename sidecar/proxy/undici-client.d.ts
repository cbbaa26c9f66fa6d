// undici's Client module alone. Its index also loads fetch, WebSocket, caches, mocks and
// their dependencies, 8 MB of a sidecar's idle RSS for nothing the sidecar uses; the Client
// is the same class the index exports (package.json pins the version).
declare module 'undici/lib/dispatcher/client' {
  import { Client } from 'undici';
  export = Client;
}
