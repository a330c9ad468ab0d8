/**
 * The `api.pinsvcapi` section (env CLUSTER_PINSVCAPI_<KEY>): the same server settings as the REST
 * API (the template of api/rest/config.ts, IPFS Cluster 1.1.6 `api/common/config.go`), listening
 * on 127.0.0.1:9097 by default. `service init` writes it and the daemon starts the API, as the
 * reference does.
 *
 * @example
 * ```ts
 * const cfg = pinSvcApiSection.load({ http_listen_multiaddress: '/ip4/127.0.0.1/tcp/0' })
 * cfg.basic_auth_credentials // null: no auth
 * ```
 */
import { type ConfigOf, defineSection } from '../../config/schema.ts'
import { checkTls, httpApiFields, legacy } from '../rest/config.ts'

/** Field definitions of `api.pinsvcapi`. */
export const pinSvcApiSection = defineSection('api.pinsvcapi', 'PINSVCAPI', httpApiFields(9097), {
  validate: checkTls,
  legacy,
})

/** The loaded `api.pinsvcapi` section (durations in ms). */
export type PinSvcApiConfig = ConfigOf<typeof pinSvcApiSection.fields>
