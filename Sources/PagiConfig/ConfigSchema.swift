/// The JSON Schema (draft 2020-12) of the config language, printed by `pagi-serve schema` for
/// editors (`# yaml-language-server: $schema=…`). Each section's keys are the loader's own lists
/// (`ConfigBuilder.topLevelKeys`, `ConfigBuilder.serverKeys`, …, `MiddlewareKind.allCases`), so the
/// schema cannot name a key the loader refuses or miss one it takes; `sectionsWithoutTypes` lists
/// any key still lacking a type (a test keeps it empty). Every scalar may also be a `${VAR}`
/// reference (docs/configuration.md §2.4), which the schema allows wherever a number or a
/// boolean is expected.
public enum ConfigSchema {
    public static var document: ConfigValue {
        .map([
            (key: "$schema", value: .string("https://json-schema.org/draft/2020-12/schema")),
            (key: "title", value: .string("pagi-serve configuration")),
            (key: "description", value: .string("One YAML file declaring hosts, routes, handlers and middleware (see docs/configuration.md).")),
            (key: "type", value: .string("object")),
            (key: "additionalProperties", value: .bool(false)),
            (key: "properties", value: .map(properties(ConfigBuilder.topLevelKeys, topLevel))),
            (key: "$defs", value: .map(definitions)),
        ])
    }

    /// Section name → keys the loader takes but the schema gives no type (kept empty by a test).
    public static var sectionsWithoutTypes: [String: [String]] {
        let sections: [(String, [String], [String: ConfigValue])] = [
            ("top level", ConfigBuilder.topLevelKeys, topLevel), ("server", ConfigBuilder.serverKeys, server),
            ("host", ConfigBuilder.hostKeys, host), ("route", ConfigBuilder.routeKeys + ConfigBuilder.handlerNames, routeKeys),
            ("static", ConfigBuilder.staticKeys, staticOptions), ("middleware", MiddlewareKind.allCases.map(\.rawValue), middlewareOptions),
        ]
        var missing: [String: [String]] = [:]
        for (name, keys, types) in sections {
            let untyped = keys.filter { types[$0] == nil }
            if !untyped.isEmpty { missing[name] = untyped }
        }
        return missing
    }

    // MARK: Building blocks

    private static func properties(_ keys: [String], _ types: [String: ConfigValue]) -> ConfigValue.Pairs {
        keys.map { (key: $0, value: types[$0] ?? .bool(true)) }
    }

    private static func object(_ keys: [String], _ types: [String: ConfigValue], required: [String] = []) -> ConfigValue {
        var schema: ConfigValue.Pairs = [
            (key: "type", value: .string("object")), (key: "additionalProperties", value: .bool(false)),
            (key: "properties", value: .map(properties(keys, types))),
        ]
        if !required.isEmpty { schema.append((key: "required", value: .list(required.map(ConfigValue.string)))) }
        return .map(schema)
    }

    private static func object(_ types: KeyValuePairs<String, ConfigValue>, required: [String] = []) -> ConfigValue {
        object(types.map(\.key), Dictionary(uniqueKeysWithValues: types.map { ($0.key, $0.value) }), required: required)
    }

    private static func ref(_ name: String) -> ConfigValue { .map([(key: "$ref", value: .string("#/$defs/\(name)"))]) }
    private static func anyOf(_ schemas: ConfigValue...) -> ConfigValue { .map([(key: "anyOf", value: .list(schemas))]) }
    private static func type(_ name: String) -> ConfigValue { .map([(key: "type", value: .string(name))]) }
    private static func oneOfValues(_ values: [String]) -> ConfigValue {
        anyOf(.map([(key: "enum", value: .list(values.map(ConfigValue.string)))]), ref("env"))
    }
    private static func list(of item: ConfigValue) -> ConfigValue {
        .map([(key: "type", value: .string("array")), (key: "items", value: item)])
    }
    /// One item or a list of them (the loader takes both).
    private static func oneOrList(_ item: ConfigValue) -> ConfigValue { anyOf(item, list(of: item)) }
    private static func integer(_ minimum: Int, _ maximum: Int? = nil) -> ConfigValue {
        var pairs: ConfigValue.Pairs = [(key: "type", value: .string("integer")), (key: "minimum", value: .int(minimum))]
        if let maximum { pairs.append((key: "maximum", value: .int(maximum))) }
        return anyOf(.map(pairs), ref("env"))
    }

    private static let string = type("string")
    private static let boolean = anyOf(type("boolean"), ref("env"))
    private static let duration = ref("duration")
    private static let size = ref("size")
    private static let strings = oneOrList(type("string"))
    private static let headerMap: ConfigValue = .map([
        (key: "type", value: .string("object")), (key: "additionalProperties", value: anyOf(type("string"), type("number"), type("boolean"))),
    ])
    private static let headerEdits = object(["set": headerMap, "add": headerMap, "remove": strings])
    private static let status = integer(100, 599)

    // MARK: Sections

    private static var topLevel: [String: ConfigValue] {
        [
            "server": ref("server"), "tls": ref("tls"),
            "pubsub": .map([(key: "type", value: .string("string")), (key: "pattern", value: .string("^(memory|redis://.+)$"))]),
            "middleware": .map([(key: "type", value: .string("object")), (key: "additionalProperties", value: ref("middlewareList"))]),
            "include": strings,
            "hosts": .map([(key: "type", value: .string("array")), (key: "minItems", value: .int(1)), (key: "items", value: ref("host"))]),
        ]
    }

    private static var server: [String: ConfigValue] {
        let listener = anyOf(string, object(["address": string, "tls": anyOf(boolean, ref("tls")), "http2": boolean, "proxy_protocol": boolean, "mode": string, "owner": string],
                                            required: ["address"]))
        return [
            "listen": oneOrList(listener),
            "workers": anyOf(integer(1), .map([(key: "const", value: .string("auto"))])),
            "threads": anyOf(integer(1), .map([(key: "const", value: .string("auto"))])),
            "max_requests": integer(0),
            "log_level": oneOfValues(LogLevel.allCases.map(\.rawValue)),
            "access_log": object(["to": string, "format": oneOfValues(AccessLogConfig.Format.allCases.map(\.rawValue))]),
            "timeouts": object(["header": duration, "body": duration, "idle": duration, "write": duration, "shutdown": duration]),
            "limits": object(["connections": integer(1), "header_bytes": size, "uri_bytes": size, "body_bytes": size, "headers": integer(1)]),
            "trusted_proxies": list(of: ref("cidr")),
            "http2": boolean,
            "pid_file": string,
            "backlog": integer(1, 65535),
            "server_header": boolean,
            "user": string,
            "group": string,
            "admin": object(["listen": string], required: ["listen"]),
            "middleware": ref("middlewareList"),
        ]
    }

    private static var host: [String: ConfigValue] {
        [
            "names": strings, "default": boolean, "tls": ref("tls"), "middleware": ref("middlewareList"),
            "errors": .map([
                (key: "type", value: .string("object")),
                (key: "propertyNames", value: .map([(key: "pattern", value: .string("^[45][0-9][0-9]$"))])),
                (key: "additionalProperties", value: string),
            ]),
            "routes": list(of: ref("route")),
        ]
    }

    /// Route keys and handler keys; exactly one handler per route (checked by `oneOf` in `route`).
    private static var routeKeys: [String: ConfigValue] {
        [
            "path": string, "methods": strings, "headers": headerMap, "query": headerMap,
            "body_json": .map([(key: "type", value: .string("object"))]), "middleware": ref("middlewareList"), "cycle": boolean,
            "static": anyOf(string, object(ConfigBuilder.staticKeys, staticOptions, required: ["root"])),
            "respond": anyOf(ref("response"), list(of: ref("response"))),
            "redirect": anyOf(string, object(["to": string, "status": oneOfIntegers([301, 302, 303, 307, 308])], required: ["to"])),
            "proxy": object([
                "to": strings, "balance": oneOfValues(["round_robin", "least_conn", "random", "ip_hash"]),
                "health": object(["path": string, "interval": duration, "timeout": duration,
                                   "rise": .map([(key: "type", value: .string("integer")), (key: "minimum", value: .int(1))]),
                                   "fall": .map([(key: "type", value: .string("integer")), (key: "minimum", value: .int(1))]),
                                   "status": anyOf(status, string, list(of: anyOf(status, string)))]),
                "strip_prefix": boolean, "headers": headerEdits, "timeout": duration, "ca": string,
            ], required: ["to"]),
            "websocket": anyOf(.map([(key: "const", value: .string("echo"))]), object([
                "echo": boolean, "broadcast": string, "subscribe": string, "max_message": size, "ping_interval": duration,
                "idle_timeout": duration, "compression": boolean, "subprotocols": strings, "origins": strings,
            ])),
            "sse": object([
                "subscribe": string, "ticker": object(["every": duration, "data": string, "event": string], required: ["every"]),
                "keepalive": duration, "retry": duration, "replay": integer(0),
            ]),
            "publish": string,
            "openapi": object(["spec": string, "validate": boolean], required: ["spec"]),
            "health": .map([(key: "const", value: .bool(true))]),
            "metrics": .map([(key: "const", value: .string("prometheus"))]),
        ]
    }

    private static func oneOfIntegers(_ values: [Int]) -> ConfigValue {
        anyOf(.map([(key: "enum", value: .list(values.map(ConfigValue.int)))]), ref("env"))
    }

    private static var staticOptions: [String: ConfigValue] {
        [
            "root": string, "index": strings, "listing": boolean, "fallback": string,
            "precompressed": list(of: oneOfValues(StaticConfig.Encoding.allCases.map(\.rawValue))),
            "cache_control": string, "dotfiles": oneOfValues(["deny", "allow"]), "follow_symlinks": oneOfValues(["inside", "always", "never"]),
        ]
    }

    /// The options of each middleware, by name.
    private static var middlewareOptions: [String: ConfigValue] {
        [
            MiddlewareKind.headers.rawValue: object(["set": headerMap, "add": headerMap, "remove": strings, "request": headerEdits]),
            MiddlewareKind.cors.rawValue: object([
                "origins": strings, "methods": strings, "headers": strings, "expose": strings, "credentials": boolean, "max_age": duration,
            ]),
            MiddlewareKind.basicAuth.rawValue: object(["realm": string, "users": headerMap, "htpasswd": string]),
            MiddlewareKind.ipFilter.rawValue: object(["allow": list(of: ref("cidr")), "deny": list(of: ref("cidr"))]),
            MiddlewareKind.rateLimit.rawValue: object([
                "rate": .map([(key: "type", value: .string("string")), (key: "pattern", value: .string("^[0-9.]+/[smh]$"))]),
                "burst": integer(1), "key": .map([(key: "type", value: .string("string")), (key: "pattern", value: .string("^(client_ip|header:.+)$"))]),
            ], required: ["rate"]),
            MiddlewareKind.compress.rawValue: anyOf(.map([(key: "type", value: .string("null"))]), object([
                "algorithms": oneOrList(oneOfValues(CompressOptions.Algorithm.allCases.map(\.rawValue))), "min_size": size,
                "level": integer(1, 9), "types": strings,
            ])),
            MiddlewareKind.bodyLimit.rawValue: size,
            MiddlewareKind.requestID.rawValue: anyOf(.map([(key: "type", value: .string("null"))]), object(["header": string])),
            MiddlewareKind.rewrite.rawValue: object(["from": string, "to": string], required: ["from", "to"]),
        ]
    }

    private static var definitions: ConfigValue.Pairs {
        let handlerChoice = ConfigBuilder.handlerNames.map { name in
            ConfigValue.map([(key: "required", value: .list([.string(name)]))])
        }
        let route: ConfigValue = .map([
            (key: "type", value: .string("object")), (key: "additionalProperties", value: .bool(false)),
            (key: "properties", value: .map(properties(ConfigBuilder.routeKeys + ConfigBuilder.handlerNames, routeKeys))),
            (key: "required", value: .list([.string("path")])),
            (key: "oneOf", value: .list(handlerChoice)),
        ])
        let middlewareItem = anyOf(
            .map([(key: "type", value: .string("string")),
                  (key: "description", value: .string("a stack defined under top-level middleware:, or request_id / compress"))]),
            .map([
                (key: "type", value: .string("object")), (key: "minProperties", value: .int(1)), (key: "maxProperties", value: .int(1)),
                (key: "additionalProperties", value: .bool(false)),
                (key: "properties", value: .map(properties(MiddlewareKind.allCases.map(\.rawValue), middlewareOptions))),
            ])
        )
        let response = object([
            "status": status, "headers": headerMap, "json": .bool(true), "body": string, "file": string, "template": boolean,
            "delay": anyOf(duration, object(["min": duration, "max": duration], required: ["min", "max"])),
            "throttle": .map([(key: "type", value: .string("string")), (key: "pattern", value: .string("/s$"))]),
            "fault": oneOfValues(Fault.allCases.map(\.rawValue)),
        ])
        return [
            (key: "env", value: .map([(key: "type", value: .string("string")), (key: "pattern", value: .string("\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}"))])),
            (key: "duration", value: anyOf(.map([(key: "type", value: .string("number")), (key: "minimum", value: .int(0))]),
                                         .map([(key: "type", value: .string("string")), (key: "pattern", value: .string("^ *([0-9]*\\.?[0-9]+ *(ms|s|m|h)?|\\$\\{.+\\}) *$"))]))),
            (key: "size", value: anyOf(.map([(key: "type", value: .string("integer")), (key: "minimum", value: .int(0))]),
                                     .map([(key: "type", value: .string("string")), (key: "pattern", value: .string("^ *([0-9]*\\.?[0-9]+ *([kKmMgG][iI]?[bB]|[bB])?|\\$\\{.+\\}) *$"))]))),
            (key: "cidr", value: .map([(key: "type", value: .string("string")), (key: "pattern", value: .string("^[0-9a-fA-F:.]+(/[0-9]{1,3})?$"))])),
            (key: "tls", value: object(["cert": string, "key": string, "client_ca": string, "client_auth": oneOfValues(["require", "optional"]),
                                        "min_version": oneOfValues(["1.2", "1.3"]),
                                        "acme": object(["email": string, "directory": string, "challenge": oneOfValues(["http-01", "tls-alpn-01"]),
                                                        "storage": string, "ca_roots": string])])),
            (key: "server", value: object(ConfigBuilder.serverKeys, server)),
            (key: "host", value: object(ConfigBuilder.hostKeys, host)),
            (key: "route", value: route),
            (key: "response", value: response),
            (key: "middlewareList", value: list(of: middlewareItem)),
        ]
    }
}

extension ConfigValue {
    public typealias Pairs = [(key: String, value: ConfigValue)]
}
