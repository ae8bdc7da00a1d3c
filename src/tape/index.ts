export { createTapeClient, type ArchiveInfo, type FileStage, type FileStageStatus, type Locality, type StageFile, type TapeClient, type TapeEndpoint } from './client.js';
export { parseDiskLifetime } from './disk-lifetime.js';
export { samePath, storagePath } from './paths.js';
