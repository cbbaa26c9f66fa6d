// Public surface of the config package.
export { parseDuration } from '../../common/duration';
export { fqdn } from './hosts';
export { ConfigError } from './errors';
export { validateDocuments, type RawDocument, type ValidateOptions } from './validate';
export { SPLIT_KEY_ANNOTATION } from './virtual-service';
export { loadConfig, parseConfigText, parseSnapshot, parseSources, readSnapshot, type LoadResult, type Snapshot, type SourceFile } from './load';
export type { SkippedDocument } from './kubernetes';
export { ConfigWatcher, type ConfigHandlers, type WatchOptions } from './watch';
