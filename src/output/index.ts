export * from './layout.js';
export * from './docker-archive.js';
