package dev.berth.store;

import java.nio.file.Path;

/**
 * Where one served model comes from (a registry, an object store): what it holds now, named by a
 * digest that changes when the content does, and a way to write that content into a directory.
 */
public interface ModelSource {
  /** What the source holds at one moment; {@code detail} is the source's own. */
  record Version(String digest, Object detail) {}

  /** The model's name when served. */
  String name();

  /** Where it comes from, for messages ({@code oci://...}, {@code s3://...}). */
  String location();

  /**
   * Asks the source what it holds now: one small request where it can.
   *
   * @throws dev.berth.api.BerthException naming the source and what failed
   */
  Version resolve();

  /**
   * Writes a version's files into an empty directory, each checked as the source allows.
   *
   * @throws dev.berth.api.BerthException naming what did not arrive or did not verify
   */
  void download(Version version, Path emptyDir);

  /** A source made of its parts. */
  static ModelSource of(
      String name,
      String location,
      java.util.function.Supplier<Version> resolve,
      java.util.function.BiConsumer<Version, Path> download) {
    record Parts(
        String name,
        String location,
        java.util.function.Supplier<Version> resolver,
        java.util.function.BiConsumer<Version, Path> downloader)
        implements ModelSource {
      @Override
      public Version resolve() {
        return resolver.get();
      }

      @Override
      public void download(Version version, Path emptyDir) {
        downloader.accept(version, emptyDir);
      }
    }
    return new Parts(name, location, resolve, download);
  }

  /** Downloads an OCI model a {@link Version} of {@link OciModelStore#resolve} names. */
  private static void ociDownload(OciModelStore store, Version version, Path emptyDir) {
    store.download((OciModelStore.Resolved) version.detail(), emptyDir);
  }

  /**
   * One model of a repository index {@code berth push} stored: each poll reads the index at its tag
   * and follows the model's entry in it.
   */
  static ModelSource ociMember(OciReference index, String name, OciModelStore store) {
    return of(
        name,
        index + " (model " + name + ")",
        () -> {
          String digest =
              store.members(index).stream()
                  .filter(m -> m.name().equals(name))
                  .findFirst()
                  .orElseThrow(
                      () ->
                          new dev.berth.api.BerthException(
                              index + " no longer lists model '" + name + "'"))
                  .digest();
          OciModelStore.Resolved r = store.resolve(index.withDigest(digest));
          return new Version(r.digest(), r);
        },
        (version, dir) -> ociDownload(store, version, dir));
  }

  /**
   * The models a reference holds as sources: the members of a repository index, each followed
   * through the index at its tag, or the one model its manifest is.
   */
  static java.util.List<ModelSource> ociAll(OciReference ref, OciModelStore store) {
    return ociAll(ref, store, store.indexMembers(ref));
  }

  /** The same, with the reference's index members (empty: one model) already read. */
  static java.util.List<ModelSource> ociAll(
      OciReference ref,
      OciModelStore store,
      java.util.Optional<java.util.List<ModelArtifact.Member>> index) {
    if (index.isEmpty()) {
      store.resolve(ref); // a Berth model, or a clear refusal now
      return java.util.List.of(oci(ref, store));
    }
    return index.get().stream().map(m -> ociMember(ref, m.name(), store)).toList();
  }

  /** A model berth push stored in an OCI registry. */
  static ModelSource oci(OciReference ref, OciModelStore store) {
    String name = ref.repository().substring(ref.repository().lastIndexOf('/') + 1);
    return of(
        name,
        ref.toString(),
        () -> {
          OciModelStore.Resolved r = store.resolve(ref);
          return new Version(r.digest(), r);
        },
        (version, dir) -> ociDownload(store, version, dir));
  }

  /** The same source served under another name (a service file's {@code name:}). */
  static ModelSource renamed(ModelSource source, String name) {
    return source.name().equals(name)
        ? source
        : of(name, source.location(), source::resolve, source::download);
  }
}
