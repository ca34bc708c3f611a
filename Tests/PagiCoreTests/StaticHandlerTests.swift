import Foundation
@testable import PagiCore
import PagiConfig
import XCTest

final class StaticHandlerTests: XCTestCase {
    private var site: StaticFixture!

    override func setUpWithError() throws {
        site = try StaticFixture()
    }

    override func tearDown() {
        site = nil
    }

    // MARK: Files and headers

    func testServesFileWithValidatorsAndCacheControl() throws {
        try site.write("hello.txt", "hello, world\n", modified: 784_111_777)
        let response = site.handler { $0.cacheControl = "public, max-age=60" }.get("/hello.txt")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.text, "hello, world\n")
        XCTAssertEqual(response.body.length, 13)
        XCTAssertEqual(response.headers["Content-Type"], "text/plain; charset=utf-8")
        XCTAssertEqual(response.headers["Last-Modified"], "Sun, 06 Nov 1994 08:49:37 GMT")
        XCTAssertEqual(response.headers["Accept-Ranges"], "bytes")
        XCTAssertEqual(response.headers["Cache-Control"], "public, max-age=60")
        XCTAssertNil(response.headers["Vary"], "no precompressed variants")
        let etag = try XCTUnwrap(response.headers["ETag"])
        XCTAssertTrue(etag.hasPrefix("\"") && etag.hasSuffix("\"") && !etag.hasPrefix("W/"), etag)
        XCTAssertNil(site.handler().get("/hello.txt").headers["Cache-Control"])
    }

    func testETagChangesWhenTheFileChanges() throws {
        try site.write("a.txt", "one", modified: 1_000_000)
        let handler = site.handler()
        let first = try XCTUnwrap(handler.get("/a.txt").headers["ETag"])
        XCTAssertEqual(handler.get("/a.txt").headers["ETag"], first, "stable")
        try site.setModified("a.txt", 1_000_001)
        let second = try XCTUnwrap(handler.get("/a.txt").headers["ETag"])
        XCTAssertNotEqual(first, second)
        try site.write("a.txt", "two!", modified: 1_000_001)
        let afterRewrite = handler.get("/a.txt")
        XCTAssertEqual(afterRewrite.text, "two!", "the small-file cache sees the new version")
        XCTAssertNotEqual(afterRewrite.headers["ETag"], second)
    }

    func testRecentAnswersAreReusedForAtMostTheirLifetime() throws {
        try site.write("hot.txt", "v1", modified: 1_000_000)
        let handler = site.handler(freshFor: .milliseconds(300))
        XCTAssertEqual(handler.get("/hot.txt").text, "v1")
        try site.write("hot.txt", "v2!", modified: 1_000_001)
        let reused = handler.get("/hot.txt")
        XCTAssertEqual(reused.text, "v1", "answered from memory without looking at the file")
        let etag = try XCTUnwrap(reused.headers["ETag"])
        XCTAssertEqual(handler.get("/hot.txt", ["If-None-Match": etag]).status, 304,
                       "conditionals work on the remembered answer")
        XCTAssertEqual(handler.get("/hot.txt", ["Range": "bytes=1-"]).text, "1", "so do ranges")
        Thread.sleep(forTimeInterval: 0.4)
        XCTAssertEqual(handler.get("/hot.txt").text, "v2!", "a changed file is seen once the lifetime is over")
        try FileManager.default.removeItem(atPath: site.path("hot.txt"))
        XCTAssertEqual(handler.get("/hot.txt").text, "v2!")
        Thread.sleep(forTimeInterval: 0.4)
        XCTAssertEqual(handler.get("/hot.txt").status, 404)
    }

    func testMissingPathsAreRememberedForAtMostTheirLifetime() throws {
        let handler = site.handler(freshFor: .milliseconds(300))
        XCTAssertEqual(handler.get("/late.txt").status, 404)
        try site.write("late.txt", "here now")
        XCTAssertEqual(handler.get("/late.txt").status, 404, "the miss is remembered without a file-system lookup")
        XCTAssertEqual(handler.get("/other.txt").status, 404)
        Thread.sleep(forTimeInterval: 0.4)
        XCTAssertEqual(handler.get("/late.txt").text, "here now", "a file created since is served once the lifetime is over")
    }

    func testMissesAreNotRememberedWhenAFallbackAnswers() throws {
        try site.write("index.html", "app")
        let handler = site.handler(freshFor: .seconds(60)) { $0.fallback = "index.html" }
        XCTAssertEqual(handler.get("/route").text, "app")
        try site.write("route", "real file")
        XCTAssertEqual(handler.get("/route").text, "real file")
    }

    func testLargeFilesAreRememberedOpenForAtMostTheirLifetime() throws {
        let bytes = patternBytes(count: 200_000)
        try site.write("big.bin", bytes)
        let handler = site.handler(freshFor: .milliseconds(300))
        XCTAssertTrue(handler.get("/big.bin").bodyBytes == bytes)
        // The whole site moves away: a lookup would find nothing, but the file is kept open.
        let moved = site.root.path + "-moved"
        try FileManager.default.moveItem(atPath: site.root.path, toPath: moved)
        defer { try? FileManager.default.moveItem(atPath: moved, toPath: site.root.path) }
        XCTAssertTrue(handler.get("/big.bin").bodyBytes == bytes, "served from the descriptor kept open, without a lookup")
        XCTAssertEqual(handler.get("/big.bin", ["Range": "bytes=10-19"]).bodyBytes, Array(bytes[10...19]), "ranges too")
        Thread.sleep(forTimeInterval: 0.4)
        XCTAssertNotEqual(handler.get("/big.bin").status, 200, "forgotten once the lifetime is over")
    }

    func testAReplacedOrChangedLargeFileIsLookedUpAgainAtOnce() throws {
        let first = patternBytes(count: 200_000), second = Array(first.reversed())
        try site.write("big.bin", first)
        let handler = site.handler(freshFor: .seconds(60))
        XCTAssertTrue(handler.get("/big.bin").bodyBytes == first)
        XCTAssertTrue(handler.get("/big.bin").bodyBytes == first, "remembered")
        // Replaced by a rename: the old file's status changed (it lost its name), so it is looked up anew.
        try Data(second).write(to: URL(fileURLWithPath: site.path("big.bin")), options: .atomic)
        XCTAssertTrue(handler.get("/big.bin").bodyBytes == second)
        XCTAssertTrue(handler.get("/big.bin").bodyBytes == second, "remembered")
        // Written in place and shorter: the remembered length would now be wrong.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: site.path("big.bin")))
        try handle.truncate(atOffset: 150_000)
        try handle.close()
        let response = handler.get("/big.bin")
        XCTAssertEqual(response.body.length, 150_000)
        XCTAssertTrue(response.bodyBytes == Array(second[..<150_000]))
    }

    func testLargeFilesAreSentFromTheDescriptor() throws {
        let bytes = patternBytes(count: 200_000)
        try site.write("big.bin", bytes)
        let response = site.handler().get("/big.bin")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.headers["Content-Type"], "application/octet-stream")
        guard case .file(_, let offset, let length) = response.body else { return XCTFail("expected a file body") }
        XCTAssertEqual(offset, 0)
        XCTAssertEqual(length, bytes.count)
        XCTAssertTrue(response.bodyBytes == bytes)
    }

    func testHeadAnswersLikeGet() throws {
        try site.write("page.html", "<p>hi</p>")
        let handler = site.handler()
        let get = handler.get("/page.html"), head = handler.get("/page.html", method: "HEAD")
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.body.length, get.body.length)
        XCTAssertEqual(head.headers["ETag"], get.headers["ETag"])
        XCTAssertEqual(head.headers["Content-Type"], "text/html; charset=utf-8")
    }

    func testOtherMethodsAre405WithAllow() throws {
        try site.write("a.txt", "A")
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            let response = site.handler().get("/a.txt", method: method)
            XCTAssertEqual(response.status, 405, method)
            XCTAssertEqual(response.headers["Allow"], "GET, HEAD, OPTIONS")
        }
        let options = site.handler().get("/a.txt", method: "OPTIONS")
        XCTAssertEqual(options.status, 204)
        XCTAssertEqual(options.headers["Allow"], "GET, HEAD, OPTIONS")
    }

    func testMissingFilesAre404WithoutPaths() throws {
        let response = site.handler().get("/nope.txt")
        XCTAssertEqual(response.status, 404)
        guard case .empty = response.body else { return XCTFail("the engine fills error bodies") }
        XCTAssertEqual(response.headers.count, 0)
        try site.write("file.txt", "x")
        XCTAssertEqual(site.handler().get("/file.txt/").status, 404, "a file is not a directory")
        XCTAssertEqual(site.handler().get("/file.txt/more").status, 404)
    }

    // MARK: Mount semantics

    func testSubtreeMountStripsThePatternPrefix() throws {
        try site.write("assets/css/a.css", "a{}")
        let handler = site.handler(root: "assets", pattern: "/static/")
        XCTAssertEqual(handler.get("/static/css/a.css").text, "a{}")
        XCTAssertEqual(handler.get("/static/css/a.css").headers["Content-Type"], "text/css; charset=utf-8")
        let deep = site.handler(root: "assets", pattern: "/v1/{tenant}/files/")
        XCTAssertEqual(deep.get("/v1/acme/files/css/a.css").text, "a{}")
    }

    func testRestParameterMount() throws {
        try site.write("files/docs/readme.md", "# hi")
        let handler = site.handler(root: "files", pattern: "/download/{rest...}")
        let response = handler.get("/download/docs/readme.md", params: ["rest": "docs/readme.md"])
        XCTAssertEqual(response.text, "# hi")
        XCTAssertEqual(response.headers["Content-Type"], "text/markdown; charset=utf-8")
        XCTAssertEqual(handler.get("/download/docs", params: ["rest": "docs"]).status, 301)
        XCTAssertEqual(handler.get("/download/x", params: ["rest": "../files/docs/readme.md"]).status, 404,
                       "defensive: `..` is refused even if it reaches the handler")
    }

    func testExactPatternServesTheRoot() throws {
        try site.write("pages/about.html", "<h1>About</h1>")
        try site.write("home/index.html", "<h1>Home</h1>")
        XCTAssertEqual(site.handler(root: "pages/about.html", pattern: "/about").get("/about").text, "<h1>About</h1>")
        XCTAssertEqual(site.handler(root: "pages/about.html", pattern: "/about").get("/about").headers["Content-Type"],
                       "text/html; charset=utf-8")
        XCTAssertEqual(site.handler(root: "home", pattern: "/{$}").get("/").text, "<h1>Home</h1>")
        XCTAssertEqual(site.handler(root: "home", pattern: "/welcome").get("/welcome").text, "<h1>Home</h1>")
    }

    // MARK: Directories

    func testDirectoryWithoutSlashRedirectsKeepingTheQuery() throws {
        try site.write("docs/index.html", "<p>docs</p>")
        try site.write("my docs/index.html", "<p>spaced</p>")
        let handler = site.handler()
        let redirect = handler.get("/docs", query: "x=1&y=%20")
        XCTAssertEqual(redirect.status, 301)
        XCTAssertEqual(redirect.headers["Location"], "/docs/?x=1&y=%20")
        XCTAssertEqual(handler.get("/docs").headers["Location"], "/docs/")
        XCTAssertEqual(handler.get("/my docs").headers["Location"], "/my%20docs/")
        XCTAssertEqual(handler.get("/docs/").text, "<p>docs</p>")
    }

    func testMountPointWithoutSlashRedirects() throws {
        try site.write("docs/index.html", "<p>docs</p>")
        let handler = site.handler(root: "docs", pattern: "/docs/")
        XCTAssertEqual(handler.get("/docs").status, 301)
        XCTAssertEqual(handler.get("/docs").headers["Location"], "/docs/")
        XCTAssertEqual(handler.get("/docs/").text, "<p>docs</p>")
    }

    func testIndexFilesInConfiguredOrder() throws {
        try site.write("d/index.htm", "htm")
        try site.write("d/default.html", "default")
        let handler = site.handler { $0.index = ["index.html", "index.htm", "default.html"] }
        XCTAssertEqual(handler.get("/d/").text, "htm")
        XCTAssertEqual(handler.get("/d/").headers["Content-Type"], "text/html; charset=utf-8")
    }

    func testDirectoryWithoutIndexOrListingIs403() throws {
        try site.write("empty/file.bin", "x")
        XCTAssertEqual(site.handler().get("/empty/").status, 403)
    }

    func testHTMLListingEscapesAndEncodesNames() throws {
        try site.write("files/a.txt", "A", modified: 784_111_777)
        try site.write("files/<b>&.txt", "B")
        try site.write("files/with space.txt", "C")
        try site.write("files/sub/x.txt", "X")
        try site.write("files/.hidden", "H")
        let response = site.handler { $0.listing = true }.get("/files/")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.headers["Content-Type"], "text/html; charset=utf-8")
        let html = response.text
        XCTAssertTrue(html.contains("<a href=\"../\">../</a>"), html)
        XCTAssertTrue(html.contains("<a href=\"a.txt\">a.txt</a>"), html)
        XCTAssertTrue(html.contains("<a href=\"%3Cb%3E&amp;.txt\">&lt;b&gt;&amp;.txt</a>"), html)
        XCTAssertTrue(html.contains("href=\"with%20space.txt\""), html)
        XCTAssertTrue(html.contains("Sun, 06 Nov 1994 08:49:37 GMT"), html)
        XCTAssertFalse(html.contains(".hidden"), "dotfiles are hidden when denied")
        XCTAssertFalse(html.contains(site.root.path), "never a file-system path")
        let subIndex = try XCTUnwrap(html.range(of: "href=\"sub/\"")).lowerBound
        let fileIndex = try XCTUnwrap(html.range(of: "href=\"a.txt\"")).lowerBound
        XCTAssertLessThan(subIndex, fileIndex, "directories first")
    }

    func testJSONListing() throws {
        try site.write("files/b.txt", "BB", modified: 784_111_777)
        try site.write("files/a.txt", "A")
        try site.makeDirectory("files/zdir")
        try site.write("files/.env", "secret")
        let response = site.handler { $0.listing = true }.get("/files/", ["Accept": "application/json"])
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.headers["Content-Type"], "application/json; charset=utf-8")
        let entries = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(response.bodyBytes)) as? [[String: Any]])
        XCTAssertEqual(entries.compactMap { $0["name"] as? String }, ["zdir", "a.txt", "b.txt"])
        XCTAssertEqual(entries[0]["type"] as? String, "directory")
        XCTAssertEqual(entries[2]["type"] as? String, "file")
        XCTAssertEqual(entries[2]["size"] as? Int, 2)
        XCTAssertEqual(entries[2]["modified"] as? String, "1994-11-06T08:49:37Z")

        let allowed = site.handler { $0.listing = true; $0.dotfiles = .allow }.get("/files/", ["Accept": "application/json"])
        XCTAssertTrue(allowed.text.contains("\".env\""))
        let html = site.handler { $0.listing = true }.get("/files/", ["Accept": "text/html, application/json;q=0.5"])
        XCTAssertEqual(html.headers["Content-Type"], "text/html; charset=utf-8")
    }

    func testHTMLListingHasHumanSizesDatesAndSortableColumns() throws {
        try site.write("files/small.txt", "12345", modified: 784_111_777)
        try site.write("files/big.bin", String(repeating: "x", count: 1536))
        try site.makeDirectory("files/sub")
        let html = site.handler { $0.listing = true }.get("/files/").text
        XCTAssertTrue(html.contains(#"<td class="size" title="5 bytes">5 B</td>"#), html)
        XCTAssertTrue(html.contains(#"<td class="size" title="1536 bytes">1.5 KiB</td>"#), html)
        XCTAssertTrue(html.contains(#"<time datetime="1994-11-06T08:49:37Z" title="Sun, 06 Nov 1994 08:49:37 GMT">1994-11-06 08:49</time>"#), html)
        for key in ["name", "size", "modified"] { XCTAssertTrue(html.contains(#"<button data-key="\#(key)">"#), key) }
        XCTAssertTrue(html.contains(#"data-name="small.txt" data-size="5" data-modified="784111777""#), html)
        XCTAssertTrue(html.contains("1 directory, 2 files, 1.5 KiB"), html)
        XCTAssertEqual(DirectoryListing.humanSize(0), "0 B")
        XCTAssertEqual(DirectoryListing.humanSize(1024), "1 KiB")
        XCTAssertEqual(DirectoryListing.humanSize(10 * 1024 * 1024 + 1), "10 MiB")
        XCTAssertEqual(DirectoryListing.humanSize(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB")
    }

    func testRootListingHasNoParentLink() throws {
        try site.write("a.txt", "A")
        XCTAssertFalse(site.handler { $0.listing = true }.get("/").text.contains("../"))
    }

    // MARK: Fallback

    func testFallbackServesTheFileForMissingPaths() throws {
        try site.write("index.html", "<div id=app></div>")
        try site.write("real.js", "x()")
        let handler = site.handler(pattern: "/app/") { $0.fallback = "/index.html" }
        let response = handler.get("/app/some/client/route")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.text, "<div id=app></div>")
        XCTAssertEqual(response.headers["Content-Type"], "text/html; charset=utf-8")
        XCTAssertEqual(handler.get("/app/real.js").text, "x()")
        let broken = site.handler { $0.fallback = "/missing.html" }.get("/nothing")
        XCTAssertEqual(broken.status, 404)
    }

    // MARK: Dotfiles and symlinks

    func testDotfilesDeniedUnlessAllowed() throws {
        try site.write(".env", "SECRET=1")
        try site.write(".git/config", "[core]")
        try site.write(".well-known/acme-challenge/token", "proof")
        try site.write(".well-known/.private", "no")
        let denied = site.handler()
        XCTAssertEqual(denied.get("/.env").status, 404)
        XCTAssertEqual(denied.get("/.git/config").status, 404)
        XCTAssertEqual(denied.get("/.well-known/acme-challenge/token").text, "proof")
        XCTAssertEqual(denied.get("/.well-known/.private").status, 404)
        XCTAssertEqual(site.handler { $0.dotfiles = .allow }.get("/.env").text, "SECRET=1")
    }

    func testSymlinksInsidePolicy() throws {
        try site.write("site/real.txt", "real")
        try site.write("site/dir/inner.txt", "inner")
        try site.write("outside.txt", "outside")
        try site.write("outdir/x.txt", "x")
        try site.symlink("site/alias.txt", to: site.path("site/real.txt"))
        try site.symlink("site/relative.txt", to: "dir/inner.txt")
        try site.symlink("site/escape.txt", to: site.path("outside.txt"))
        try site.symlink("site/escape-dir", to: site.path("outdir"))
        try site.symlink("site/sneaky.txt", to: "../outside.txt")
        let handler = site.handler(root: "site")
        XCTAssertEqual(handler.get("/alias.txt").text, "real")
        XCTAssertEqual(handler.get("/relative.txt").text, "inner")
        XCTAssertEqual(handler.get("/escape.txt").status, 404)
        XCTAssertEqual(handler.get("/escape-dir/x.txt").status, 404)
        XCTAssertEqual(handler.get("/sneaky.txt").status, 404)
        let listing = site.handler(root: "site") { $0.listing = true }.get("/").text
        XCTAssertTrue(listing.contains("alias.txt"))
        XCTAssertFalse(listing.contains("escape.txt"), "links leaving the root are not listed")
    }

    func testSymlinksNeverPolicy() throws {
        try site.write("site/real.txt", "real")
        try site.write("site/dir/inner.txt", "inner")
        try site.symlink("site/alias.txt", to: site.path("site/real.txt"))
        try site.symlink("site/linked-dir", to: site.path("site/dir"))
        let handler = site.handler(root: "site") { $0.followSymlinks = .never }
        XCTAssertEqual(handler.get("/real.txt").text, "real")
        XCTAssertEqual(handler.get("/dir/inner.txt").text, "inner")
        XCTAssertEqual(handler.get("/alias.txt").status, 404)
        XCTAssertEqual(handler.get("/linked-dir/inner.txt").status, 404, "a link anywhere on the way")
        XCTAssertEqual(handler.get("/linked-dir/").status, 404)
    }

    func testSymlinksAlwaysPolicy() throws {
        try site.write("site/real.txt", "real")
        try site.write("outside.txt", "outside")
        try site.symlink("site/escape.txt", to: site.path("outside.txt"))
        let handler = site.handler(root: "site") { $0.followSymlinks = .always }
        XCTAssertEqual(handler.get("/escape.txt").text, "outside")
    }

    func testRootThatIsASymlinkIsFine() throws {
        try site.write("real-root/a.txt", "A")
        try site.symlink("link-root", to: site.path("real-root"))
        XCTAssertEqual(site.handler(root: "link-root").get("/a.txt").text, "A")
    }

    func testNonRegularFilesAreNotServed() throws {
        let fifo = site.path("pipe")
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertEqual(site.handler().get("/pipe").status, 404, "and opening it did not block")
    }
}
