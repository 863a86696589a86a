/// Which build this is, in a module of its own: the Runner prints it without importing the
/// monitoring server, and a new version (every commit changes it) recompiles this file only.
public enum EmbedStarVersion {
    /// What the build says it is: `git describe` of the clone it was built from (a tag, or
    /// `0.1.0+g<commit>`, `-dirty` with uncommitted changes), or `EMBED_STAR_VERSION` at build
    /// time (the image's tag). Written by the BuildVersion plugin.
    public static let current = BuildVersion.described
}
