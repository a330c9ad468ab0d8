/** The cluster's data model: pins, statuses, identities, metrics and their JSON forms. */
export * from './cid.ts'
export * from './duration.ts'
export * from './id.ts'
export * from './metric.ts'
export * from './pin.ts'
export * from './pininfo.ts'
export * from './status.ts'
export * from './time.ts'
