export * from './image.js';
export * from './config.js';
