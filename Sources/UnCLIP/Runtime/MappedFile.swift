import Foundation

/// A read-only file opened for positioned reads and page-aligned memory maps.
public final class ReadOnlyFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    let fd: Int32

    public init(_ path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw WeightsError(.io, file: path, "cannot open: \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            close(fd)
            throw WeightsError(.io, file: path, "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw WeightsError(.io, file: path, (st.st_mode & S_IFMT) == S_IFDIR ? "is a folder; give a file" : "not a regular file (a device, pipe or socket); give a file")
        }
        size = Int(st.st_size)
    }

    deinit { close(fd) }

    /// Reads exactly `count` bytes at `offset` into `dest`.
    public func read(at offset: Int, count: Int, into dest: UnsafeMutableRawPointer) throws {
        guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
            throw WeightsError(.malformed, file: path, "read of \(count) bytes at \(offset) is past the end (\(size) bytes)")
        }
        var done = 0
        while done < count {
            let n = pread(fd, dest + done, count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw WeightsError(.io, file: path, "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw WeightsError(.malformed, file: path, "file ended early (truncated?)") }
            done += n
        }
    }

    public func bytes(at offset: Int, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { (b) throws in
            if count > 0 { try read(at: offset, count: count, into: b.baseAddress!) }
        }
        return out
    }

    /// Maps [offset, offset+count) read-only; the mapping lives as long as the returned region.
    public func map(offset: Int, count: Int) throws -> MappedRegion {
        guard offset >= 0, count > 0, offset <= size, count <= size - offset else {
            throw WeightsError(.malformed, file: path, "map of \(count) bytes at \(offset) is outside the file (\(size) bytes)")
        }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page
        let length = offset + count - start
        guard let p = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, off_t(start)), p != MAP_FAILED else {
            throw WeightsError(.io, file: path, "mmap failed: \(String(cString: strerror(errno)))")
        }
        return MappedRegion(base: p, length: length, data: p + (offset - start), count: count)
    }
}

/// A read-only memory mapping; unmapped when released.
public final class MappedRegion: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let length: Int
    /// The requested bytes (inside the page-aligned mapping).
    public let data: UnsafeRawPointer
    public let count: Int

    init(base: UnsafeMutableRawPointer, length: Int, data: UnsafeMutableRawPointer, count: Int) {
        self.base = base
        self.length = length
        self.data = UnsafeRawPointer(data)
        self.count = count
    }

    deinit { munmap(base, length) }

    /// Drops the mapping's resident pages (MADV_DONTNEED). The mapping stays valid: a later read faults the page
    /// back in from the file. Used after f32 weights were packed into their own buffers, so that the packed copy is
    /// not held twice.
    public func dropResidentPages() {
        madvise(base, length, Int32(MADV_DONTNEED))
    }

    /// The same for the whole pages inside [offset, offset+count) of `data` (neighbours' pages are kept).
    public func dropResidentPages(offset: Int, count: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = data - UnsafeRawPointer(base) + offset
        let lo = (start + page - 1) / page * page, hi = (start + count) / page * page
        if hi > lo { madvise(base + lo, hi - lo, Int32(MADV_DONTNEED)) }
    }
}
