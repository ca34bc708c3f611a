import PagiConfig

/// The body of a directory listing: HTML for browsers, JSON for `Accept: application/json`.
enum DirectoryListing {
    /// Directories first, then by name.
    static func sorted(_ entries: [DirectoryEntry]) -> [DirectoryEntry] {
        entries.sorted { a, b in
            a.isDirectory != b.isDirectory ? a.isDirectory : a.name < b.name
        }
    }

    /// `[{"name": ..., "type": "file"|"directory", "size": bytes|null, "modified": RFC 3339}]`.
    static func json(_ entries: [DirectoryEntry]) -> String {
        let objects = sorted(entries).map { entry in
            "{\"name\":" + TextEscaping.jsonString(entry.name)
                + ",\"type\":\"" + (entry.isDirectory ? "directory" : "file")
                + "\",\"size\":" + (entry.isDirectory ? "null" : String(entry.size))
                + ",\"modified\":\"" + HTTPDate.formatISO8601(epochSeconds: entry.modifiedSeconds) + "\"}"
        }
        return "[" + objects.joined(separator: ",") + "]\n"
    }

    /// `urlPath` is the decoded request path of the directory (shown as the title).
    static func html(_ entries: [DirectoryEntry], urlPath: String) -> String {
        let title = "Index of " + TextEscaping.html(urlPath)
        var html = """
            <!DOCTYPE html>
            <html><head><meta charset="utf-8"><title>\(title)</title>
            <style>body{font-family:sans-serif}td{padding:0 1em 0 0}td.size{text-align:right}</style></head>
            <body><h1>\(title)</h1>
            <table>

            """
        if urlPath != "/" {
            html += "<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n"
        }
        for entry in sorted(entries) {
            let name = entry.isDirectory ? entry.name + "/" : entry.name
            let href = TextEscaping.html(TextEscaping.percentEncodedPath(name))
            let size = entry.isDirectory ? "-" : String(entry.size)
            html += "<tr><td><a href=\"\(href)\">\(TextEscaping.html(name))</a></td>"
                + "<td class=\"size\">\(size)</td><td>\(HTTPDate.format(epochSeconds: entry.modifiedSeconds))</td></tr>\n"
        }
        return html + "</table>\n</body></html>\n"
    }
}
