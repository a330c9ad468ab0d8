/**
 * The `api.restapi` section (env CLUSTER_RESTAPI_<KEY>), and the template every HTTP API's section
 * is built from (`api.pinsvcapi` in api/pinsvc/config.ts shares it): the keys of IPFS Cluster
 * 1.1.6 `api/common/config.go` (jsonConfig), plus the legacy key its `api/rest/config.go` read up
 * to v0.9.0.
 */
import {
  bool,
  type ConfigOf,
  defineSection,
  duration,
  type Field,
  int,
  maddrList,
  str,
  strList,
  strMap,
} from '../../config/schema.ts'

/**
 * Response headers added to every answer: name → values, as the reference's
 * `map[string][]string`. A single string value is accepted too; env form `Name:value,Name2:v`.
 */
export function headerMap(def: Record<string, string[]> = {}): Field<Record<string, string[]>> {
  const parse = (v: unknown) => {
    if (v === null) return {}
    if (typeof v !== 'object' || Array.isArray(v)) {
      throw new Error('must be an object of header name to list of values')
    }
    const out: Record<string, string[]> = {}
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) {
        throw new Error(`invalid header name ${JSON.stringify(k)}`)
      }
      const values = typeof x === 'string' ? [x] : x
      if (
        !Array.isArray(values) || values.some((e) => typeof e !== 'string' || /[\r\n\0]/.test(e))
      ) {
        throw new Error(`header ${k} must be a list of strings without line breaks`)
      }
      out[k] = values as string[]
    }
    return out
  }
  return {
    kind: 'headers',
    default: def,
    parse,
    parseEnv(s) {
      const out: Record<string, string[]> = {}
      for (const pair of s.split(',')) {
        if (!pair) continue
        const i = pair.indexOf(':')
        if (i < 0) throw new Error(`must be a list of Name:value pairs, got ${JSON.stringify(s)}`)
        ;(out[pair.slice(0, i)] ??= []).push(pair.slice(i + 1))
      }
      return parse(out)
    },
    toJSON: (v) => v,
  }
}

const NO_LIBP2P = 'the API is served over HTTP only, with no libp2p-http endpoint'

/** Keys of older releases, accepted and reported (every HTTP API's section). */
export const legacy = {
  listen_multiaddress: 'IPFS Cluster 0.9 and older; ignored (as 1.1.6 does): ' +
    'http_listen_multiaddress replaces it',
}

/**
 * The fields of an HTTP API's section (`api/common` of the reference), listening on `port`.
 *
 * @example
 * ```ts
 * defineSection('api.pinsvcapi', 'PINSVCAPI', httpApiFields(9097), { validate: checkTls, legacy })
 * ```
 */
export function httpApiFields(port: number) {
  return {
    http_listen_multiaddress: maddrList([`/ip4/127.0.0.1/tcp/${port}`]),
    ssl_cert_file: { ...str(''), omitDefault: true },
    ssl_key_file: { ...str(''), omitDefault: true },
    read_timeout: duration(0),
    read_header_timeout: duration(5000),
    write_timeout: duration(0),
    idle_timeout: duration(120_000),
    max_header_bytes: int(4096, { min: 4096 }),
    /** Largest request body accepted (bytes). Not in the reference, which has no limit. */
    max_body_bytes: { ...int(1 << 20, { min: 1024 }), hidden: true },
    /**
     * Connections served at once; the next ones get a 503. 0 (default): a quarter of the
     * open-files limit, 16 to 4096 (conn_guard.ts). Not in the reference, which has no limit.
     */
    max_connections: { ...int(0, { min: 0 }), omitDefault: true },
    libp2p_listen_multiaddress: { ...maddrList([]), omitDefault: true, ignored: NO_LIBP2P },
    id: { ...str(''), omitDefault: true, ignored: NO_LIBP2P },
    private_key: { ...str(''), omitDefault: true, ignored: NO_LIBP2P },
    basic_auth_credentials: strMap(null, { nullable: true, nonEmpty: true }),
    http_log_file: str(''),
    headers: headerMap(),
    cors_allowed_origins: strList(['*']),
    cors_allowed_methods: strList(['GET']),
    cors_allowed_headers: strList([]),
    cors_exposed_headers: strList([
      'Content-Type',
      'X-Stream-Output',
      'X-Chunked-Output',
      'X-Content-Length',
    ]),
    cors_allow_credentials: bool(true),
    cors_max_age: duration(0),
  }
}

/** The cross-key check of an HTTP API's section. */
export const checkTls = (c: { ssl_cert_file: string; ssl_key_file: string }) =>
  (c.ssl_cert_file === '') !== (c.ssl_key_file === '')
    ? 'ssl_cert_file and ssl_key_file must be set together'
    : undefined

/** Field definitions of `api.restapi`. */
export const restApiSection = defineSection('api.restapi', 'RESTAPI', httpApiFields(9094), {
  validate: checkTls,
  legacy,
})

/** The loaded `api.restapi` section (durations in ms). */
export type RestApiConfig = ConfigOf<typeof restApiSection.fields>
/** The settings every HTTP API shares (REST, Pinning Service API). */
export type HttpApiConfig = RestApiConfig
