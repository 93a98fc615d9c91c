export { decodeName, displayName, fsPath, hasEscapedBytes, nameBytes, quotedName } from './names.js';
export { mountTable, type MountEntry } from './mountinfo.js';
