export { createChecksummer, isChecksumAlgorithm, type Checksummer } from './checksum.js';
export { serverDigest } from './digest.js';
export { createConfiguredEngine, createHttpEngine } from './engine.js';
export { hostKey, intoDirectory, locationName, locationText, parseLocation, type Location } from './location.js';
export { partPath, type TransferContext, type TransferEngine, type TransferProgress, type TransferResult, type TransferTask } from './task.js';
export { httpError, networkError } from './errors.js';
export { bodyText, createHttpClient, discard, header, send, type HttpClient, type HttpClientOptions, type HttpRequest, type HttpResponse } from './http.js';
export { deleteEntry, propfind, propfindEach, walkRemote, walkTree, type RemoteEntry, type RemoteTree, type TreeEntry, type WalkOptions } from './listing.js';
export { remoteDigest } from './remote-digest.js';
