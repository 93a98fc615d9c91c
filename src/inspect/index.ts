export * from './report.js';
export * from './text.js';
