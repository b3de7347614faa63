import Foundation

/// Bytes written to a temporary file beside `path` and renamed into place: the file appears complete or not at all.
public enum AtomicFile {
    /// The folder of `path` must exist and `path` must not be a folder: the checks every output gets before work.
    public static func checkWritable(_ path: String) throws {
        var st = stat()
        if stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            throw UnCLIPError.io(path: path, detail: "is a folder; give a file name")
        }
        let dir = (path as NSString).deletingLastPathComponent
        guard access(dir.isEmpty ? "." : dir, W_OK) == 0 else {
            throw UnCLIPError.io(path: path, detail: "cannot write there: its folder \(dir.isEmpty ? "." : dir) \(errno == ENOENT ? "does not exist" : "is not writable (\(String(cString: strerror(errno))))")")
        }
    }

    /// mkdir -p, with the system's reason on failure.
    public static func makeDirectory(_ path: String) throws {
        var st = stat()
        if stat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw UnCLIPError.io(path: path, detail: "exists and is not a folder") }
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path { try makeDirectory(parent) }
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
            throw UnCLIPError.io(path: path, detail: "cannot create the folder: \(String(cString: strerror(errno)))")
        }
    }

    public static func write(_ data: Data, to path: String) throws { try write([UInt8](data), to: path) }

    public static func write(_ bytes: [UInt8], to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = (dir.isEmpty ? "." : dir) + "/.\((path as NSString).lastPathComponent).\(getpid()).tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw UnCLIPError.io(path: path, detail: "cannot create \(tmp): \(String(cString: strerror(errno)))") }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let reason = String(cString: strerror(errno))
                close(fd)
                unlink(tmp)
                throw UnCLIPError.io(path: path, detail: "cannot write: \(reason)")
            }
            done += n
        }
        guard close(fd) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw UnCLIPError.io(path: path, detail: "cannot write: \(reason)")
        }
        guard rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw UnCLIPError.io(path: path, detail: "cannot move the written file into place: \(reason)")
        }
    }
}
