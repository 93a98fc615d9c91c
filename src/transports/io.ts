import type { WriteImageOptions } from './destinations.js';
import type { OpenImageOptions } from './sources.js';

/** How a command reaches registries: what opening an image and writing one need (credentials, fetch, mirrors …). */
export type RegistryIo = OpenImageOptions & WriteImageOptions;
