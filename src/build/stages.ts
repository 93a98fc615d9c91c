import type { Platform } from '../oci/index.js';
import type { StageState } from './state.js';

export interface StageResult {
  state: StageState;
  platform: Platform;
}

/** Each stage runs once, however many stages wait on it. */
export class StageResults {
  private readonly running = new Map<number, Promise<StageResult>>();

  get(index: number, start: () => Promise<StageResult>): Promise<StageResult> {
    let result = this.running.get(index);
    if (!result) {
      result = start();
      this.running.set(index, result);
    }
    return result;
  }

  /** Waits for every started stage to settle, so nothing runs on after the build returns. */
  async closeAll(): Promise<void> {
    await Promise.allSettled(this.running.values());
  }
}
