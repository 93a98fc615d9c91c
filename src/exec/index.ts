export * from './types.js';
export * from './none.js';
