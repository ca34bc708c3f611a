import PagiConfig

/// The `static` handler (docs/configuration.md §9.1): files below a root directory, with validators,
/// conditionals, ranges, precompressed variants, index files and listings.
public struct StaticHandler: Handler {
    private let config: StaticConfig
    private let mount: MountPoint
    private let fileSystem: StaticFileSystem
    private let cache = SmallFileCache.shared
    private let freshAnswers: FreshAnswers<RememberedFile>
    /// Larger files, remembered with an open descriptor each: fewer, since each holds one.
    private let freshFiles: FreshAnswers<RememberedFile>
    /// Paths recently found missing (no `fallback`): a 404 flood costs no file-system lookups.
    private let freshMisses: FreshAnswers<Void>

    /// `pattern` is the route's path pattern (`/assets/`, `/files/{rest...}`, `/`, `/about`).
    /// A small file's answer is reused for `freshFor` without looking at the file system again.
    public init(config: StaticConfig, pattern: RoutePattern, freshFor: Duration = .seconds(1)) {
        freshAnswers = FreshAnswers(lifetime: freshFor)
        freshFiles = FreshAnswers(lifetime: freshFor, maximumEntries: 256)
        freshMisses = FreshAnswers(lifetime: freshFor)
        self.config = config
        mount = MountPoint(pattern)
        fileSystem = StaticFileSystem(root: config.root, symlinks: config.followSymlinks)
    }

    public func handle(_ request: Request) -> Response {
        guard request.method == "GET" || request.method == "HEAD" else {
            // OPTIONS asks which methods work here: answer it (RFC 9110 §9.3.7); refuse the rest.
            return Response(status: request.method == "OPTIONS" ? 204 : 405, headers: ["Allow": "GET, HEAD, OPTIONS"])
        }
        // An encoded `/` or `\` in a segment could name another file than the segments spell.
        guard !request.pathHasEncodedSeparators else { return Response(status: 400) }
        let freshKey = freshAnswerKey(request)
        if let fresh = freshAnswers.lookup(freshKey) ?? freshFiles.lookup(freshKey) {
            switch fresh.content {
            case .bytes(let bytes):
                return RepresentationResponse(metadata: fresh.metadata, body: .memory(bytes)).answer(request)
            case .file(let kept, let status):
                // A file changed in place, or no descriptor to spare: looked up as usual below.
                if let descriptor = kept.duplicate(ifStill: status) {
                    return RepresentationResponse(metadata: fresh.metadata, body: .file(descriptor, status: status, cache: cache))
                        .answer(request)
                }
            }
        }
        if freshMisses.lookup(freshKey) != nil { return Response(status: 404) }
        let target = mount.target(of: request)
        guard target.segments.allSatisfy(isServable) else { return notFound(request, freshKey: freshKey) }
        switch fileSystem.locate(target.segments) {
        case .failure(let failure):
            return failure == .notFound ? notFound(request, freshKey: freshKey) : Response(status: failure.status)
        case .success(let located):
            switch located.entry.status.kind {
            case .regular:
                // `/file.txt/` names a directory that does not exist.
                guard !target.endsWithSlash || target.segments.isEmpty else { return notFound(request, freshKey: freshKey) }
                return serveFile(located, request, freshKey: freshKey)
            case .directory:
                guard target.endsWithSlash else { return redirectToDirectory(request) }
                return serveDirectory(located.entry, request, freshKey: freshKey)
            case .symbolicLink, .other:
                return notFound(request, freshKey: freshKey)
            }
        }
    }

    /// Refuses segments that could leave the root or are hidden (the engine already normalised
    /// the path; this is defence in depth).
    private func isServable(_ segment: String) -> Bool {
        isConfinedName(segment) && (config.dotfiles == .allow || !isHidden(segment))
    }

    /// A name that stays in its directory (also checked for configured index names).
    private func isConfinedName(_ segment: String) -> Bool {
        segment != "." && segment != ".." && !segment.utf8.contains(0) && !segment.utf8.contains(UInt8(ascii: "\\"))
    }

    /// Dotfiles, except `.well-known` (RFC 8615: ACME challenges and friends live there).
    private func isHidden(_ name: String) -> Bool {
        name.hasPrefix(".") && name != ".well-known"
    }

    /// The fallback (single-page apps), or 404 — remembered briefly for `freshKey`.
    private func notFound(_ request: Request, freshKey: String) -> Response {
        guard let fallback = config.fallback else {
            freshMisses.store(freshKey, ())
            return Response(status: 404)
        }
        let segments = fallback.split(separator: "/").map(String.init)
        guard segments.allSatisfy(isServable), case .success(let located) = fileSystem.locate(segments),
              located.entry.status.kind == .regular else { return Response(status: 404) }
        return serveFile(located, request)
    }

    /// 301 to the slash form, built from the request (never from the file system).
    private func redirectToDirectory(_ request: Request) -> Response {
        var location = TextEscaping.percentEncodedPath(request.path + "/")
        // A path is never `//host`: that would be a protocol-relative redirect to another site.
        while location.hasPrefix("//") { location.removeFirst() }
        if let query = request.query { location += "?" + query }
        return Response(status: 301, headers: ["Location": location])
    }

    private func serveDirectory(_ directory: OpenedEntry, _ request: Request, freshKey: String) -> Response {
        for index in config.index {
            let segments = index.split(separator: "/").map(String.init)
            if segments.allSatisfy(isConfinedName),
               case .success(let located) = fileSystem.locate(segments, below: directory.descriptor),
               located.entry.status.kind == .regular {
                return serveFile(located, request, freshKey: freshKey)
            }
        }
        guard config.listing else { return Response(status: 403) }
        let entries = fileSystem.entries(of: directory.descriptor).filter {
            config.dotfiles == .allow || !isHidden($0.name)
        }
        var headers: HeaderFields = ["Vary": "Accept"]
        let body: String
        if ContentNegotiation.prefersJSON(accept: request.headers.values("Accept").joined(separator: ",")) {
            headers.add("Content-Type", "application/json; charset=utf-8")
            body = DirectoryListing.json(entries)
        } else {
            headers.add("Content-Type", "text/html; charset=utf-8")
            body = DirectoryListing.html(entries, urlPath: request.path)
        }
        if let cacheControl = config.cacheControl { headers.add("Cache-Control", cacheControl) }
        return Response(status: 200, headers: headers, body: .bytes(Array(body.utf8)))
    }

    /// `freshKey` is set when the answer may be remembered for this request path (not for a fallback).
    private func serveFile(_ located: LocatedEntry, _ request: Request, freshKey: String? = nil) -> Response {
        // The root itself may be a file (an exact route such as `/about` → `pages/about.html`).
        let contentType = MIMETypes.contentType(forPath: located.name.isEmpty ? config.root : located.name)
        let representation = MIMETypes.isCompressible(contentType: contentType)
            ? selectRepresentation(located, request)
            : Representation(entry: located.entry, encoding: nil, hasVariants: false)
        let metadata = RepresentationMetadata(representation, contentType: contentType, cacheControl: config.cacheControl)
        let status = representation.entry.status
        if let freshKey, request.method == "GET", let bytes = cache.contents(of: representation.entry.descriptor, status: status) {
            freshAnswers.store(freshKey, RememberedFile(metadata: metadata, content: .bytes(bytes)))
            return RepresentationResponse(metadata: metadata, body: .memory(bytes)).answer(request)
        }
        if let freshKey, status.size > cache.maximumFileSize, let kept = KeptDescriptor(duplicating: representation.entry.descriptor) {
            freshFiles.store(freshKey, RememberedFile(metadata: metadata, content: .file(kept, status)))
        }
        let body = RepresentationBody.file(representation.entry.descriptor, status: status, cache: cache)
        return RepresentationResponse(metadata: metadata, body: body).answer(request)
    }

    /// The precompressed sibling the client accepts best, or the file itself.
    private func selectRepresentation(_ located: LocatedEntry, _ request: Request) -> Representation {
        let identity = Representation(entry: located.entry, encoding: nil, hasVariants: false)
        guard let parent = located.parent, !config.precompressed.isEmpty else { return identity }
        let available = config.precompressed.filter {
            fileSystem.regularFileExists(named: located.name + $0.fileExtension, in: parent)
        }
        guard !available.isEmpty else { return identity }
        let acceptEncoding = request.headers.values("Accept-Encoding")
        if let encoding = ContentNegotiation.encoding(
               acceptEncoding: acceptEncoding.isEmpty ? nil : acceptEncoding.joined(separator: ","),
               available: available),
           case .success(let variant) = fileSystem.openEntry(named: located.name + encoding.fileExtension, in: parent),
           variant.status.kind == .regular {
            return Representation(entry: variant, encoding: encoding, hasVariants: true)
        }
        return Representation(entry: located.entry, encoding: nil, hasVariants: true)
    }
}

/// How a route pattern maps request paths to paths below the root.
enum MountPoint: Equatable {
    /// `/about`, `/{$}`: the root itself.
    case exact
    /// `/docs/`: the request path minus the pattern's `depth` leading segments.
    case subtree(depth: Int)
    /// `/files/{rest...}`: the captured parameter.
    case rest(parameter: String)

    init(_ pattern: RoutePattern) {
        switch pattern.ending {
        case .tail(let rest?): self = .rest(parameter: rest)
        case .tail(nil): self = .subtree(depth: pattern.segments.count)
        case .exact: self = .exact
        }
    }

    /// Path segments below the root, and whether the request named a directory (trailing slash).
    func target(of request: Request) -> (segments: [String], endsWithSlash: Bool) {
        let endsWithSlash = request.path.hasSuffix("/")
        switch self {
        case .exact:
            return ([], true)
        case .subtree(let depth):
            return (request.path.split(separator: "/").dropFirst(depth).map(String.init), endsWithSlash)
        case .rest(let parameter):
            let rest = request.params[parameter] ?? ""
            return (rest.split(separator: "/").map(String.init), endsWithSlash)
        }
    }
}
