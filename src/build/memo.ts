/**
 * A key of the build's memo. Keys are made only by a `MemoKind`, and a kind holds values of one type,
 * so a value is always read back as the type it was made with.
 */
export interface MemoKey<T> {
  readonly text: string;
  /** Never set: ties the key to its value's type (in both directions, so a key of one type is no key of another). */
  readonly valueType?: (value: T) => T;
}

/** One kind of work a build does once and shares (an unpacked image, a file index, the context listing). */
export class MemoKind<T> {
  constructor(private readonly prefix: string) {}

  key(id = ''): MemoKey<T> {
    return { text: `${this.prefix}:${id}` };
  }
}

/** Work done once per build and shared between its stages and platforms. */
export class BuildMemo {
  private readonly values = new Map<string, Promise<unknown>>();

  /** The value under `key`, made by `make` the first time it is asked for. */
  get<T>(key: MemoKey<T>, make: () => Promise<T>): Promise<T> {
    let value = this.read(key);
    if (value === undefined) {
      value = make();
      this.values.set(key.text, value);
    }
    return value;
  }

  /** What is held (or being made) under `key`, without making it. */
  peek<T>(key: MemoKey<T>): Promise<T> | undefined {
    return this.read(key);
  }

  /** What is held under `key`, removed: work made ahead for one consumer. */
  take<T>(key: MemoKey<T>): Promise<T> | undefined {
    const value = this.read(key);
    this.values.delete(key.text);
    return value;
  }

  private read<T>(key: MemoKey<T>): Promise<T> | undefined {
    // Only get() stores, under a MemoKey<T>, a Promise<T>; a key's text belongs to one kind, hence one T.
    return this.values.get(key.text) as Promise<T> | undefined;
  }
}
