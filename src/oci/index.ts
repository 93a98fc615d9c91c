export * from './media-types.js';
export * from './types.js';
export * from './canonical-json.js';
export * from './parse.js';
export * from './platform.js';
export * from './defaults.js';
export * from './platform-select.js';
