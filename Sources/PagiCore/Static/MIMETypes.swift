/// Media types by file extension: nginx's `mime.types` plus the modern web formats it lacks.
public enum MIMETypes {
    public static let fallback = "application/octet-stream"

    /// The `Content-Type` for a file path (or name), with `charset=utf-8` for text types.
    public static func contentType(forPath path: String) -> String {
        guard let type = mediaType(forPath: path) else { return fallback }
        return isText(type) ? type + "; charset=utf-8" : type
    }

    /// The bare media type for the path's extension (case-insensitive), or nil when unknown.
    static func mediaType(forPath path: String) -> String? {
        let name = path.lastIndex(of: "/").map { path[path.index(after: $0)...] } ?? Substring(path)
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return nil }
        return typesByExtension[name[name.index(after: dot)...].lowercased()]
    }

    /// Text formats are served as UTF-8 so browsers never sniff another charset.
    static func isText(_ type: String) -> Bool {
        type.hasPrefix("text/") || type.hasSuffix("+json") || type.hasSuffix("+xml")
            || ["application/javascript", "application/json", "application/xml", "application/yaml"].contains(type)
    }

    /// Formats that compression shrinks, so precompressed siblings are worth looking for.
    /// Images, audio, video and archives are already compressed: probing for `.br`/`.zst`/`.gz`
    /// next to them would cost three `fstatat` calls per request for nothing.
    public static func isCompressible(contentType: String) -> Bool {
        let type = contentType.firstIndex(of: ";").map { String(contentType[..<$0]) } ?? contentType
        return isText(type) || type == "image/svg+xml" || type == "application/wasm" || type.hasPrefix("font/")
            || ["image/x-icon", "image/vnd.microsoft.icon", "image/bmp", "application/vnd.ms-fontobject"].contains(type)
    }

    private static let typesByExtension: [String: String] = [
        // Text and documents
        "html": "text/html", "htm": "text/html", "shtml": "text/html", "xhtml": "application/xhtml+xml",
        "css": "text/css", "txt": "text/plain", "text": "text/plain", "log": "text/plain", "conf": "text/plain",
        "ini": "text/plain", "md": "text/markdown", "markdown": "text/markdown", "csv": "text/csv",
        "tsv": "text/tab-separated-values", "ics": "text/calendar", "vtt": "text/vtt", "srt": "text/plain",
        "xml": "application/xml", "xsl": "application/xml", "xsd": "application/xml", "dtd": "application/xml-dtd",
        "rss": "application/rss+xml", "atom": "application/atom+xml", "mml": "text/mathml",
        "jad": "text/vnd.sun.j2me.app-descriptor", "wml": "text/vnd.wap.wml", "htc": "text/x-component",
        "yaml": "application/yaml", "yml": "application/yaml", "toml": "application/toml",
        "rtf": "application/rtf", "tex": "application/x-tex", "sh": "text/x-shellscript",
        "c": "text/x-c", "h": "text/x-c", "py": "text/x-python", "swift": "text/x-swift",
        // Scripts and data
        "js": "application/javascript", "mjs": "application/javascript", "cjs": "application/javascript",
        "json": "application/json", "map": "application/json", "jsonld": "application/ld+json",
        "webmanifest": "application/manifest+json", "geojson": "application/geo+json",
        "wasm": "application/wasm", "ts": "video/mp2t",
        // Images
        "png": "image/png", "apng": "image/apng", "jpg": "image/jpeg", "jpeg": "image/jpeg", "jfif": "image/jpeg",
        "gif": "image/gif", "webp": "image/webp", "avif": "image/avif", "heic": "image/heic", "heif": "image/heif",
        "jxl": "image/jxl", "svg": "image/svg+xml", "svgz": "image/svg+xml", "ico": "image/x-icon",
        "cur": "image/x-icon", "bmp": "image/bmp", "tif": "image/tiff", "tiff": "image/tiff",
        "wbmp": "image/vnd.wap.wbmp", "jng": "image/x-jng", "psd": "image/vnd.adobe.photoshop",
        // Fonts
        "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf", "ttc": "font/collection",
        "eot": "application/vnd.ms-fontobject",
        // Audio
        "mp3": "audio/mpeg", "ogg": "audio/ogg", "oga": "audio/ogg", "opus": "audio/ogg", "wav": "audio/wav",
        "weba": "audio/webm", "flac": "audio/flac", "aac": "audio/aac", "m4a": "audio/mp4", "mid": "audio/midi",
        "midi": "audio/midi", "kar": "audio/midi", "ra": "audio/x-realaudio",
        // Video
        "mp4": "video/mp4", "m4v": "video/mp4", "webm": "video/webm", "ogv": "video/ogg", "mov": "video/quicktime",
        "avi": "video/x-msvideo", "mkv": "video/x-matroska", "mpeg": "video/mpeg", "mpg": "video/mpeg",
        "3gp": "video/3gpp", "3gpp": "video/3gpp", "3g2": "video/3gpp2", "flv": "video/x-flv", "wmv": "video/x-ms-wmv",
        "asf": "video/x-ms-asf", "asx": "video/x-ms-asf", "mng": "video/x-mng", "m3u8": "application/vnd.apple.mpegurl",
        "mpd": "application/dash+xml",
        // Archives and compressed data
        "zip": "application/zip", "gz": "application/gzip", "tgz": "application/gzip", "br": "application/x-brotli",
        "zst": "application/zstd", "bz2": "application/x-bzip2", "xz": "application/x-xz", "tar": "application/x-tar",
        "7z": "application/x-7z-compressed", "rar": "application/vnd.rar", "jar": "application/java-archive",
        "war": "application/java-archive", "ear": "application/java-archive",
        // Office and other binary documents
        "pdf": "application/pdf", "epub": "application/epub+zip", "ps": "application/postscript",
        "eps": "application/postscript", "ai": "application/postscript",
        "doc": "application/msword", "xls": "application/vnd.ms-excel", "ppt": "application/vnd.ms-powerpoint",
        "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt": "application/vnd.oasis.opendocument.text", "ods": "application/vnd.oasis.opendocument.spreadsheet",
        "odp": "application/vnd.oasis.opendocument.presentation", "odg": "application/vnd.oasis.opendocument.graphics",
        "kml": "application/vnd.google-earth.kml+xml", "kmz": "application/vnd.google-earth.kmz",
        "apk": "application/vnd.android.package-archive", "xpi": "application/x-xpinstall",
        "swf": "application/x-shockwave-flash", "pem": "application/x-x509-ca-cert", "der": "application/x-x509-ca-cert",
        "crt": "application/x-x509-ca-cert", "p12": "application/x-pkcs12", "pfx": "application/x-pkcs12",
        "bin": "application/octet-stream", "exe": "application/octet-stream", "dll": "application/octet-stream",
        "deb": "application/octet-stream", "dmg": "application/octet-stream", "iso": "application/octet-stream",
        "img": "application/octet-stream", "msi": "application/octet-stream", "msp": "application/octet-stream",
        "msm": "application/octet-stream", "rpm": "application/x-redhat-package-manager",
        "run": "application/x-makeself", "pl": "application/x-perl", "pm": "application/x-perl",
        "prc": "application/x-pilot", "pdb": "application/x-pilot", "sea": "application/x-sea",
        "sit": "application/x-stuffit", "tcl": "application/x-tcl", "tk": "application/x-tcl",
        "cco": "application/x-cocoa", "jardiff": "application/x-java-archive-diff",
        "jnlp": "application/x-java-jnlp-file", "hqx": "application/mac-binhex40",
        "m3u": "audio/x-mpegurl", "pls": "audio/x-scpls", "sqlite": "application/vnd.sqlite3",
        "wgt": "application/widget", "rdf": "application/rdf+xml", "xspf": "application/xspf+xml",
    ]
}
