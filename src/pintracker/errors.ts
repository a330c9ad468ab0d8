/**
 * Errors of the pin tracker, with the reference's messages (clients and tests match them).
 *
 * @example
 * ```ts
 * throw new QueueFullError()
 * ```
 */
import { ClusterError } from '../errors.ts'

/** The reference's message when a pin or unpin queue holds `max_pin_queue_size` items. */
export const QUEUE_FULL = 'pin/unpin operation queue is full. Try increasing max_pin_queue_size'

/** The reference's error text for a pin this peer should hold but IPFS does not. */
export const UNEXPECTEDLY_UNPINNED = 'the item should be pinned but it is not'

/** A pin or unpin could not be queued because its queue is full. */
export class QueueFullError extends ClusterError {
  override name = 'QueueFullError'
  constructor() {
    super(QUEUE_FULL)
  }
}
