/**
 * File-system questions asked in several places.
 *
 * @example
 * ```ts
 * if (await exists(join(dir, 'service.json'))) console.log('configured')
 * ```
 */

/** True when `path` exists (a dangling symlink counts); errors other than not-found throw. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path)
    return true
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false
    throw err
  }
}
