/**
 * The peerstore file: one `/…/p2p/<id>` multiaddress per line; lines not starting with `/` are
 * skipped, as in the reference.
 *
 * @example
 * ```ts
 * const addrs = await loadPeerstore(join(dir, 'peerstore'))
 * ```
 */

/** Reads the peerstore; a missing file is an empty peerstore. */
export async function loadPeerstore(file: string): Promise<string[]> {
  let text = ''
  try {
    text = await Deno.readTextFile(file)
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return []
    throw err
  }
  return parsePeerstore(text)
}

/** Parses peerstore text. */
export function parsePeerstore(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('/'))
}

/** Writes the peerstore (one address per line). */
export async function savePeerstore(file: string, addrs: string[]): Promise<void> {
  await Deno.writeTextFile(file, addrs.length ? addrs.join('\n') + '\n' : '')
}
