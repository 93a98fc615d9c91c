export * from './layout.js';
export * from './docker-archive.js';
export * from './annotations.js';
