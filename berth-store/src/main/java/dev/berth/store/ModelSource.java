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

  /**
   * One model of a repository index {@code berth push} stored: each poll reads the index at its tag
   * and follows the model's entry in it.
   */
  static ModelSource ociMember(OciReference index, String name, OciModelStore store) {
    return new ModelSource() {
      @Override
      public String name() {
        return name;
      }

      @Override
      public String location() {
        return index + " (model " + name + ")";
      }

      @Override
      public Version resolve() {
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
      }

      @Override
      public void download(Version version, Path emptyDir) {
        store.download((OciModelStore.Resolved) version.detail(), emptyDir);
      }
    };
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
    return new ModelSource() {
      @Override
      public String name() {
        return name;
      }

      @Override
      public String location() {
        return ref.toString();
      }

      @Override
      public Version resolve() {
        OciModelStore.Resolved r = store.resolve(ref);
        return new Version(r.digest(), r);
      }

      @Override
      public void download(Version version, Path emptyDir) {
        store.download((OciModelStore.Resolved) version.detail(), emptyDir);
      }
    };
  }

  /** The same source served under another name (a service file's {@code name:}). */
  static ModelSource renamed(ModelSource source, String name) {
    if (source.name().equals(name)) {
      return source;
    }
    return new ModelSource() {
      @Override
      public String name() {
        return name;
      }

      @Override
      public String location() {
        return source.location();
      }

      @Override
      public Version resolve() {
        return source.resolve();
      }

      @Override
      public void download(Version version, Path emptyDir) {
        source.download(version, emptyDir);
      }
    };
  }
}
