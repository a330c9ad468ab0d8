/**
 * Free TCP ports for listeners started later (`service init --randomports`, tests, benches).
 *
 * A port is picked below the kernel's ephemeral range: the OS hands that range out for outgoing
 * connections too, so a port taken from it (`port: 0`) could become some client socket's local
 * port before the listener binds it, and the peer would then fail with "address already in use".
 * A port is never handed out twice by one process: `port: 0` twice in a row can return the same
 * port, and one config with two listeners on it cannot start.
 *
 * @example
 * ```ts
 * const rest = freePort()
 * ```
 *
 * @module
 */

const handedOut = new Set<number>()

/** Ports below this are left alone (well-known and registered services). */
const LOWEST = 10_000

/** A TCP port nothing listens on now on 127.0.0.1, not handed out before by this process. */
export function freePort(): number {
  const floor = ephemeralFloor()
  for (let i = 0; i < 1000; i++) {
    const port = floor - 1 - Math.floor(Math.random() * (floor - LOWEST))
    if (handedOut.has(port)) continue
    try {
      Deno.listen({ hostname: '127.0.0.1', port }).close()
    } catch {
      continue // in use
    }
    handedOut.add(port)
    return port
  }
  throw new Error('no free TCP port below the ephemeral range')
}

let floorCache: number | undefined

/** The first port of the kernel's ephemeral range (32768, Linux's default, when unreadable). */
function ephemeralFloor(): number {
  if (floorCache !== undefined) return floorCache
  floorCache = 32768
  try {
    const first = Number(
      Deno.readTextFileSync('/proc/sys/net/ipv4/ip_local_port_range').split(/\s+/)[0],
    )
    if (first > LOWEST + 1_000) floorCache = first
  } catch {
    // not Linux, or not readable: the default
  }
  return floorCache
}
