export declare const MAX_FILE_LINES: number;
export declare const MAX_FUNCTION_LINES: number;
/** Files and functions of `root`/src over the limits, as `path:line: what`. */
export declare function oversized(root: string): string[];
