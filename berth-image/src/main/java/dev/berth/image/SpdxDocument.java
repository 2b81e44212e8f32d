package dev.berth.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.api.BerthException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.UUID;

/**
 * An image's CycloneDX SBOM (as {@link ImageSbom} writes it) said again as an SPDX 2.3 JSON
 * document, for the scanners and compliance tools that read SPDX.
 *
 * <pre>{@code
 * byte[] spdx = SpdxDocument.fromCycloneDx(cdxBytes, Instant.now());
 * }</pre>
 *
 * <p>Every component becomes a package (its purl an external reference, its SHA-256 a checksum, its
 * type the package's primary purpose), the image is the package the document describes, and each
 * dependency edge ({@code A} holds {@code B}: the image its base and jars, a jar its native
 * libraries, a model version its files) becomes {@code A CONTAINS B}. A component's licences become
 * its declared licence: SPDX identifiers as they are, expressions in parentheses, licences known
 * only by name as {@code LicenseRef-} entries with their name as the extracted text; several are
 * joined with {@code OR}, as a Maven POM that lists several licences means a choice. Nothing is
 * asserted that the SBOM does not say: download locations, copyright and concluded licences are
 * {@code NOASSERTION}. The same SBOM and creation time give the same bytes.
 */
public final class SpdxDocument {
  /** The SPDX version written. */
  public static final String SPEC_VERSION = "SPDX-2.3";

  /** The media type of the document. */
  public static final String MEDIA_TYPE = "application/spdx+json";

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String NOASSERTION = "NOASSERTION";
  private static final Map<String, String> PURPOSES =
      Map.of(
          "application", "APPLICATION",
          "container", "CONTAINER",
          "device", "DEVICE",
          "file", "FILE",
          "firmware", "FIRMWARE",
          "framework", "FRAMEWORK",
          "library", "LIBRARY",
          "operating-system", "OPERATING_SYSTEM",
          "platform", "FRAMEWORK");

  private final Map<String, String> ids = new HashMap<>();
  private final Set<String> taken = new HashSet<>();
  private final SortedMap<String, ObjectNode> extractedLicences = new TreeMap<>();

  private SpdxDocument() {}

  /**
   * The SPDX 2.3 JSON document that says what the CycloneDX JSON {@code cyclonedx} says, created at
   * {@code created} (whole seconds).
   *
   * @throws BerthException when {@code cyclonedx} is not a CycloneDX JSON document
   */
  public static byte[] fromCycloneDx(byte[] cyclonedx, Instant created) {
    JsonNode cdx;
    try {
      cdx = JSON.readTree(cyclonedx);
    } catch (IOException e) {
      throw new BerthException("the SBOM is not JSON: " + e.getMessage(), e);
    }
    if (cdx == null || !"CycloneDX".equals(cdx.path("bomFormat").asText())) {
      throw new BerthException(
          "the SBOM is not a CycloneDX JSON document (no bomFormat CycloneDX)");
    }
    return new SpdxDocument().convert(cdx, cyclonedx, created);
  }

  private byte[] convert(JsonNode cdx, byte[] cyclonedx, Instant created) {
    JsonNode root = cdx.path("metadata").path("component");
    String rootRef = root.path("bom-ref").asText("");
    String rootId = root.isObject() ? id(rootRef, root) : null;

    ObjectNode doc = JSON.createObjectNode();
    doc.put("spdxVersion", SPEC_VERSION);
    doc.put("dataLicense", "CC0-1.0");
    doc.put("SPDXID", "SPDXRef-DOCUMENT");
    String name = root.isObject() ? title(root) : "sbom";
    doc.put("name", name);
    String serial = cdx.path("serialNumber").asText("");
    // one namespace per document: from the SBOM's bytes and the creation time
    doc.put(
        "documentNamespace",
        "urn:uuid:"
            + UUID.nameUUIDFromBytes(
                (sha256Hex(cyclonedx) + " " + created.truncatedTo(ChronoUnit.SECONDS))
                    .getBytes(StandardCharsets.UTF_8)));
    ObjectNode info = doc.putObject("creationInfo");
    info.put("created", created.truncatedTo(ChronoUnit.SECONDS).toString());
    ArrayNode creators = info.putArray("creators");
    for (JsonNode tool : cdx.path("metadata").path("tools").path("components")) {
      String version = tool.path("version").asText(null);
      creators.add(
          "Tool: " + tool.path("name").asText("unknown") + (version == null ? "" : "-" + version));
    }
    if (creators.isEmpty()) {
      creators.add("Tool: berth");
    }
    info.put(
        "comment",
        "converted from the CycloneDX "
            + cdx.path("specVersion").asText("?")
            + " SBOM "
            + (serial.isEmpty() ? "(no serial number)" : serial));

    ArrayNode packages = doc.putArray("packages");
    if (root.isObject()) {
      packages.add(pkg(rootId, root));
    }
    for (JsonNode c : cdx.path("components")) {
      String ref = c.path("bom-ref").asText("");
      if (ids.containsKey(ref) && !ref.isEmpty()) {
        throw new BerthException("the SBOM lists the bom-ref '" + ref + "' twice");
      }
      packages.add(pkg(id(ref, c), c));
    }
    if (!extractedLicences.isEmpty()) {
      ArrayNode extracted = doc.putArray("hasExtractedLicensingInfos");
      extractedLicences.values().forEach(extracted::add);
    }

    ArrayNode relationships = doc.putArray("relationships");
    if (rootId != null) {
      relationship(relationships, "SPDXRef-DOCUMENT", "DESCRIBES", rootId);
    }
    for (JsonNode d : cdx.path("dependencies")) {
      String from = ids.get(d.path("ref").asText());
      if (from == null) {
        throw new BerthException(
            "the SBOM's dependencies name '" + d.path("ref").asText() + "', which no component is");
      }
      for (JsonNode on : d.path("dependsOn")) {
        String to = ids.get(on.asText());
        if (to == null) {
          throw new BerthException(
              "the SBOM's dependencies name '" + on.asText() + "', which no component is");
        }
        relationship(relationships, from, "CONTAINS", to);
      }
    }
    return ImageSbom.pretty(doc, "the SPDX document");
  }

  /** The document's name: the image's name and digest. */
  private static String title(JsonNode root) {
    String version = root.path("version").asText(null);
    return root.path("name").asText("image") + (version == null ? "" : "@" + version);
  }

  private ObjectNode pkg(String id, JsonNode c) {
    ObjectNode p = JSON.createObjectNode();
    String group = c.path("group").asText(null);
    p.put(
        "name",
        group == null ? c.path("name").asText("unnamed") : group + ":" + c.path("name").asText());
    p.put("SPDXID", id);
    if (c.hasNonNull("version")) {
      p.put("versionInfo", c.path("version").asText());
    }
    String publisher = c.path("publisher").asText(null);
    p.put("supplier", publisher == null ? NOASSERTION : "Organization: " + publisher);
    p.put("downloadLocation", NOASSERTION);
    p.put("filesAnalyzed", false);
    ArrayNode checksums = JSON.createArrayNode();
    for (JsonNode h : c.path("hashes")) {
      String alg = h.path("alg").asText().replace("-", "");
      if (alg.matches("SHA(1|224|256|384|512)|MD5|SHA3256|SHA3384|SHA3512")) {
        ObjectNode sum = checksums.addObject();
        sum.put("algorithm", alg.startsWith("SHA3") ? "SHA3-" + alg.substring(4) : alg);
        sum.put("checksumValue", h.path("content").asText());
      }
    }
    if (!checksums.isEmpty()) {
      p.set("checksums", checksums);
    }
    p.put("licenseConcluded", NOASSERTION);
    p.put("licenseDeclared", licence(c.path("licenses")));
    p.put("copyrightText", NOASSERTION);
    if (c.hasNonNull("description")) {
      p.put("description", c.path("description").asText());
    }
    String source = debianSource(c.path("purl").asText(""), c.path("version").asText(""));
    if (source != null) {
      // where Trivy reads a Debian package's source package from
      p.put("sourceInfo", "built package from: " + source);
    }
    String comment = comment(c);
    if (!comment.isEmpty()) {
      p.put("comment", comment);
    }
    if (c.hasNonNull("purl")) {
      ObjectNode ref = p.putArray("externalRefs").addObject();
      ref.put("referenceCategory", "PACKAGE-MANAGER");
      ref.put("referenceType", "purl");
      ref.put("referenceLocator", c.path("purl").asText());
    }
    p.put("primaryPackagePurpose", PURPOSES.getOrDefault(c.path("type").asText(), "OTHER"));
    return p;
  }

  /** Where the component lies in the image, and its properties, one per line. */
  private static String comment(JsonNode c) {
    List<String> lines = new ArrayList<>();
    if (!PURPOSES.containsKey(c.path("type").asText())) {
      lines.add("CycloneDX type: " + c.path("type").asText());
    }
    for (JsonNode o : c.path("evidence").path("occurrences")) {
      lines.add("location: " + o.path("location").asText());
    }
    for (JsonNode prop : c.path("properties")) {
      lines.add(prop.path("name").asText() + ": " + prop.path("value").asText());
    }
    return String.join("\n", lines);
  }

  /** The declared licence: SPDX ids, expressions, and named licences as LicenseRefs. */
  private String licence(JsonNode licences) {
    Set<String> terms = new LinkedHashSet<>();
    for (JsonNode l : licences) {
      if (l.hasNonNull("expression")) {
        terms.add("(" + l.path("expression").asText().strip() + ")");
        continue;
      }
      JsonNode licence = l.path("license");
      if (licence.hasNonNull("id")) {
        terms.add(licence.path("id").asText());
      } else if (licence.hasNonNull("name")) {
        terms.add(licenceRef(licence));
      }
    }
    if (terms.isEmpty()) {
      return NOASSERTION;
    }
    if (terms.size() == 1) {
      String only = terms.iterator().next();
      return only.startsWith("(") ? only.substring(1, only.length() - 1) : only;
    }
    return String.join(" OR ", terms);
  }

  private String licenceRef(JsonNode licence) {
    String name = licence.path("name").asText().strip();
    // the hash keeps names that read alike once made safe ("GPL 2.0+", "GPL 2.0") apart
    String id = "LicenseRef-" + sanitize(name) + "-" + shortHash(name);
    extractedLicences.computeIfAbsent(
        id,
        k -> {
          ObjectNode e = JSON.createObjectNode();
          e.put("licenseId", k);
          e.put("name", name);
          e.put("extractedText", name);
          if (licence.hasNonNull("url")) {
            e.putArray("seeAlsos").add(licence.path("url").asText());
          }
          return e;
        });
    return id;
  }

  /**
   * A stable SPDX id for a component: a prefix by its type, its name made safe, and a short hash of
   * its bom-ref (so two jars of one name at two paths differ). The prefixes are the ones Trivy
   * reads an SPDX document's structure by: {@code SPDXRef-OperatingSystem-} (without it Trivy finds
   * no OS and leaves out every Debian package), {@code SPDXRef-ContainerImage-}, {@code
   * SPDXRef-Package-}.
   */
  private String id(String ref, JsonNode c) {
    String type = c.path("type").asText("component");
    String prefix =
        switch (type) {
          case "operating-system" -> "SPDXRef-OperatingSystem-";
          case "container" -> "SPDXRef-ContainerImage-";
          default -> "SPDXRef-Package-" + sanitize(type) + "-";
        };
    String base = prefix + sanitize(c.path("name").asText("unnamed")) + "-" + shortHash(ref);
    String id = base;
    for (int n = 2; !taken.add(id); n++) {
      id = base + "-" + n;
    }
    ids.put(ref, id);
    return id;
  }

  /**
   * {@code NAME VERSION} of the source package a Debian package's purl names in its {@code
   * upstream} qualifier (the package's own version when it gives none), or null.
   */
  static String debianSource(String purl, String version) {
    if (!purl.startsWith("pkg:deb/") || !purl.contains("?")) {
      return null;
    }
    for (String pair : purl.substring(purl.indexOf('?') + 1).split("&")) {
      if (pair.startsWith("upstream=")) {
        String upstream =
            java.net.URLDecoder.decode(
                pair.substring("upstream=".length()), StandardCharsets.UTF_8);
        int at = upstream.indexOf('@');
        return at < 0
            ? upstream + " " + version
            : upstream.substring(0, at) + " " + upstream.substring(at + 1);
      }
    }
    return null;
  }

  private static String sha256Hex(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static void relationship(ArrayNode out, String from, String type, String to) {
    ObjectNode r = out.addObject();
    r.put("spdxElementId", from);
    r.put("relationshipType", type);
    r.put("relatedSpdxElement", to);
  }

  /** Letters, digits, '.' and '-' only, as SPDX ids allow. */
  private static String sanitize(String s) {
    String safe = s.replaceAll("[^A-Za-z0-9.-]+", "-").replaceAll("^-+|-+$", "");
    safe = safe.length() > 80 ? safe.substring(0, 80) : safe;
    return safe.isEmpty() ? "x" : safe;
  }

  private static String shortHash(String s) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(d, 0, 6);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
