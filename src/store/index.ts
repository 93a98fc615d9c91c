export * from './types.js';
export * from './atomic.js';
export * from './file-blob-store.js';
export * from './oci-layout.js';
export * from './local-store.js';
export * from './readers.js';
export * from './copy.js';
export * from './archive.js';
