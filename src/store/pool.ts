/**
 * Runs `fn` over `items` with at most `limit` at a time. The first failure aborts the signal the
 * others get and is the error thrown, after every started task has settled (so nothing is still
 * writing when the caller cleans up).
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, signal: AbortSignal) => Promise<R>, signal?: AbortSignal): Promise<R[]> {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let firstError: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && !firstError && !controller.signal.aborted) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, controller.signal);
      } catch (error) {
        if (!firstError) {
          firstError = { error };
          controller.abort(error);
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (firstError) throw firstError.error;
  if (signal?.aborted) throw signal.reason;
  return results;
}
