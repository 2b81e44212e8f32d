package dev.berth.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.networknt.schema.JsonSchema;
import com.networknt.schema.JsonSchemaFactory;
import com.networknt.schema.SchemaLocation;
import com.networknt.schema.SpecVersion;
import dev.berth.api.BerthException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * An image's CycloneDX SBOM said as SPDX 2.3: valid against SPDX's own 2.3 JSON schema (shipped in
 * SPDX's tools), every component a package with its purl, checksum and licence, every edge a
 * CONTAINS relationship, and the same bytes for the same SBOM and time.
 */
class SpdxDocumentTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Instant CREATED = Instant.parse("2026-12-07T10:00:00.250Z");

  /** SPDX's 2.3 JSON schema, as SPDX's Java tools ship it; nothing is fetched. */
  static JsonSchema spdxSchema() {
    return JsonSchemaFactory.getInstance(SpecVersion.VersionFlag.V201909)
        .getSchema(SchemaLocation.of("classpath:resources/spdx-schema-v2.3.json"));
  }

  @Test
  void everyComponentBecomesAPackageTheImageIsDescribedAndEdgesAreContains() throws Exception {
    JsonNode spdx = JSON.readTree(SpdxDocument.fromCycloneDx(sbom(), CREATED));

    assertTrue(spdxSchema().validate(spdx).isEmpty(), spdxSchema().validate(spdx).toString());
    assertEquals("SPDX-2.3", spdx.path("spdxVersion").asText());
    assertEquals("CC0-1.0", spdx.path("dataLicense").asText());
    assertEquals("minilm@sha256:" + "a".repeat(64), spdx.path("name").asText());
    assertEquals("2026-12-07T10:00:00Z", spdx.path("creationInfo").path("created").asText());
    assertEquals("Tool: berth-1.2.3", spdx.path("creationInfo").path("creators").get(0).asText());
    assertTrue(spdx.path("documentNamespace").asText().matches("urn:uuid:[0-9a-f-]{36}"));

    Map<String, JsonNode> byName = new HashMap<>();
    Set<String> ids = new HashSet<>();
    for (JsonNode p : spdx.path("packages")) {
      assertTrue(ids.add(p.path("SPDXID").asText()), "ids are unique: " + p.path("SPDXID"));
      assertTrue(p.path("SPDXID").asText().matches("SPDXRef-[A-Za-z0-9.-]+"));
      byName.putIfAbsent(p.path("name").asText(), p);
    }
    assertEquals(10, spdx.path("packages").size(), "the image and its nine components");

    JsonNode image = byName.get("minilm");
    assertEquals("CONTAINER", image.path("primaryPackagePurpose").asText());
    JsonNode describes = spdx.path("relationships").get(0);
    assertEquals("SPDXRef-DOCUMENT", describes.path("spdxElementId").asText());
    assertEquals("DESCRIBES", describes.path("relationshipType").asText());
    assertEquals(image.path("SPDXID").asText(), describes.path("relatedSpdxElement").asText());

    JsonNode ort = byName.get("com.microsoft.onnxruntime:onnxruntime");
    assertEquals("1.29.0", ort.path("versionInfo").asText());
    assertEquals("LIBRARY", ort.path("primaryPackagePurpose").asText());
    assertEquals("MIT", ort.path("licenseDeclared").asText());
    assertEquals("NOASSERTION", ort.path("licenseConcluded").asText());
    assertEquals("NOASSERTION", ort.path("downloadLocation").asText());
    JsonNode sum = ort.path("checksums").get(0);
    assertEquals("SHA256", sum.path("algorithm").asText());
    assertEquals("b".repeat(64), sum.path("checksumValue").asText());
    JsonNode purl = ort.path("externalRefs").get(0);
    assertEquals("purl", purl.path("referenceType").asText());
    assertEquals(
        "pkg:maven/com.microsoft.onnxruntime/onnxruntime@1.29.0",
        purl.path("referenceLocator").asText());
    assertTrue(ort.path("comment").asText().contains("location: /opt/berth/lib/ort.jar"));

    // several licences are a choice, as in a Maven POM; a named one is a LicenseRef
    assertEquals(
        "LGPL-2.1-or-later OR Apache-2.0",
        byName.get("org.example:dual").path("licenseDeclared").asText());
    JsonNode bc = byName.get("org.bouncycastle:bcprov-jdk18on");
    assertTrue(
        bc.path("licenseDeclared")
            .asText()
            .matches("LicenseRef-Bouncy-Castle-Licence-[0-9a-f]{12}"),
        bc.path("licenseDeclared").asText());
    JsonNode extracted = spdx.path("hasExtractedLicensingInfos").get(0);
    assertEquals(bc.path("licenseDeclared").asText(), extracted.path("licenseId").asText());
    assertEquals("Bouncy Castle Licence", extracted.path("extractedText").asText());
    assertEquals(
        "(MIT OR Apache-2.0) OR BSD-3-Clause",
        byName.get("org.example:expr").path("licenseDeclared").asText());

    JsonNode os = byName.get("debian");
    assertEquals("OPERATING_SYSTEM", os.path("primaryPackagePurpose").asText());
    // Trivy finds the OS by this prefix, and without it leaves out every Debian package
    assertTrue(os.path("SPDXID").asText().startsWith("SPDXRef-OperatingSystem-"));
    assertTrue(image.path("SPDXID").asText().startsWith("SPDXRef-ContainerImage-"));
    assertTrue(ort.path("SPDXID").asText().startsWith("SPDXRef-Package-library-"));
    JsonNode libssl = byName.get("libssl3");
    assertEquals("built package from: openssl 3.0.11-1", libssl.path("sourceInfo").asText());
    assertFalse(byName.get("zlib1g").has("sourceInfo"));
    assertEquals("12", os.path("versionInfo").asText());
    JsonNode model = byName.get("minilm-model");
    assertEquals("OTHER", model.path("primaryPackagePurpose").asText());
    assertTrue(model.path("comment").asText().contains("CycloneDX type: machine-learning-model"));
    assertTrue(model.path("comment").asText().contains("dev.berth:model.manifest-digest: sha256:"));

    // edges: the image contains the jar, the jar contains its native library
    Map<String, String> idOf = new HashMap<>();
    spdx.path("packages")
        .forEach(p -> idOf.put(p.path("name").asText(), p.path("SPDXID").asText()));
    Set<String> edges = new HashSet<>();
    for (JsonNode r : spdx.path("relationships")) {
      edges.add(
          r.path("spdxElementId").asText()
              + " "
              + r.path("relationshipType").asText()
              + " "
              + r.path("relatedSpdxElement").asText());
    }
    assertTrue(
        edges.contains(image.path("SPDXID").asText() + " CONTAINS " + ort.path("SPDXID").asText()));
    String lib =
        spdx.path("packages").findParents("name").stream()
            .filter(p -> p.path("name").asText().equals("libonnxruntime.so"))
            .findFirst()
            .orElseThrow()
            .path("SPDXID")
            .asText();
    assertTrue(edges.contains(ort.path("SPDXID").asText() + " CONTAINS " + lib));
    assertEquals(6 + 1, edges.size(), "six edges and the document's DESCRIBES");
  }

  @Test
  void twoComponentsOfOneNameGetTwoIds() throws Exception {
    ObjectNode cdx = (ObjectNode) JSON.readTree(sbom());
    ArrayNode components = (ArrayNode) cdx.path("components");
    ObjectNode twin = components.get(0).deepCopy();
    twin.put("bom-ref", "/opt/other/ort.jar");
    components.add(twin);
    JsonNode spdx = JSON.readTree(SpdxDocument.fromCycloneDx(JSON.writeValueAsBytes(cdx), CREATED));
    Set<String> ids = new HashSet<>();
    spdx.path("packages").forEach(p -> ids.add(p.path("SPDXID").asText()));
    assertEquals(spdx.path("packages").size(), ids.size());
    assertTrue(spdxSchema().validate(spdx).isEmpty());
  }

  @Test
  void theSameSbomAndTimeGiveTheSameBytes() {
    byte[] a = SpdxDocument.fromCycloneDx(sbom(), CREATED);
    byte[] b = SpdxDocument.fromCycloneDx(sbom(), CREATED);
    assertArrayEquals(a, b);
    byte[] later = SpdxDocument.fromCycloneDx(sbom(), CREATED.plusSeconds(60));
    assertFalse(java.util.Arrays.equals(a, later));
    // each document has its own namespace
    assertNotEquals(namespace(a), namespace(later));
  }

  @Test
  void theSchemaRefusesABrokenDocumentSoTheCheckCanFail() throws Exception {
    ObjectNode spdx = (ObjectNode) JSON.readTree(SpdxDocument.fromCycloneDx(sbom(), CREATED));
    ((ObjectNode) spdx.path("packages").get(0)).put("primaryPackagePurpose", "OPERATING-SYSTEM");
    assertFalse(spdxSchema().validate(spdx).isEmpty());
    spdx.remove("documentNamespace");
    assertNotEquals(0, spdxSchema().validate(spdx).size());
  }

  @Test
  void whatIsNotACycloneDxSbomIsRefusedByName() {
    BerthException notJson =
        assertThrows(
            BerthException.class,
            () -> SpdxDocument.fromCycloneDx("{".getBytes(StandardCharsets.UTF_8), CREATED));
    assertTrue(notJson.getMessage().contains("not JSON"), notJson.getMessage());
    BerthException spdx =
        assertThrows(
            BerthException.class,
            () ->
                SpdxDocument.fromCycloneDx(
                    "{\"spdxVersion\":\"SPDX-2.3\"}".getBytes(StandardCharsets.UTF_8), CREATED));
    assertTrue(spdx.getMessage().contains("not a CycloneDX"), spdx.getMessage());
    BerthException dangling =
        assertThrows(
            BerthException.class,
            () ->
                SpdxDocument.fromCycloneDx(
                    ("{\"bomFormat\":\"CycloneDX\",\"components\":[],"
                            + "\"dependencies\":[{\"ref\":\"nowhere\"}]}")
                        .getBytes(StandardCharsets.UTF_8),
                    CREATED));
    assertTrue(dangling.getMessage().contains("'nowhere'"), dangling.getMessage());
  }

  @Test
  void aDebianPackagesSourceIsSaidAsDpkgRecordsIt() {
    assertEquals(null, ImageSbom.upstream(null, "1"));
    assertEquals("openssl", ImageSbom.upstream("openssl", "3.0.11-1"));
    assertEquals("openssl", ImageSbom.upstream("openssl (3.0.11-1)", "3.0.11-1"));
    assertEquals("glibc@2.36-9", ImageSbom.upstream("glibc (2.36-9)", "2.36-9+b1"));
    assertEquals(
        "openssl 3.0.11-1",
        SpdxDocument.debianSource("pkg:deb/debian/libssl3@3.0.11-1?upstream=openssl", "3.0.11-1"));
    assertEquals(
        "glibc 2.36-9",
        SpdxDocument.debianSource(
            "pkg:deb/debian/libc6@2.36-9%2Bb1?arch=amd64&upstream=glibc%402.36-9", "2.36-9+b1"));
    assertEquals(null, SpdxDocument.debianSource("pkg:maven/a/b@1?upstream=x", "1"));
  }

  private static String namespace(byte[] spdx) {
    try {
      return JSON.readTree(spdx).path("documentNamespace").asText();
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  @Test
  void licencesThatReadAlikeOnceMadeSafeStayApart() throws Exception {
    ObjectNode cdx = (ObjectNode) JSON.readTree(sbom());
    ArrayNode components = (ArrayNode) cdx.path("components");
    for (String name : java.util.List.of("GPL 2.0+", "GPL 2.0")) {
      ObjectNode c = components.addObject();
      c.put("bom-ref", "/lib/" + name);
      c.put("type", "library");
      c.put("name", "x");
      c.putArray("licenses").addObject().putObject("license").put("name", name);
    }
    JsonNode spdx = JSON.readTree(SpdxDocument.fromCycloneDx(JSON.writeValueAsBytes(cdx), CREATED));
    Set<String> ids = new HashSet<>();
    spdx.path("hasExtractedLicensingInfos").forEach(e -> ids.add(e.path("licenseId").asText()));
    assertEquals(3, ids.size(), ids.toString());
    assertTrue(spdxSchema().validate(spdx).isEmpty());
  }

  /** A small SBOM in the shape ImageSbom writes. */
  private static byte[] sbom() {
    String text =
        """
        {
          "bomFormat": "CycloneDX", "specVersion": "1.6",
          "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79", "version": 1,
          "metadata": {
            "tools": {"components": [{"type": "application", "name": "berth", "version": "1.2.3"}]},
            "component": {"bom-ref": "image", "type": "container", "name": "minilm",
              "version": "sha256:AAAA",
              "hashes": [{"alg": "SHA-256", "content": "AAAA"}]}
          },
          "components": [
            {"bom-ref": "/opt/berth/lib/ort.jar", "type": "library",
             "group": "com.microsoft.onnxruntime", "name": "onnxruntime", "version": "1.29.0",
             "hashes": [{"alg": "SHA-256", "content": "BBBB"}],
             "licenses": [{"license": {"id": "MIT"}}],
             "purl": "pkg:maven/com.microsoft.onnxruntime/onnxruntime@1.29.0",
             "evidence": {"occurrences": [{"location": "/opt/berth/lib/ort.jar"}]}},
            {"bom-ref": "/opt/berth/lib/ort.jar!/libonnxruntime.so", "type": "library",
             "name": "libonnxruntime.so", "version": "1.29.0",
             "hashes": [{"alg": "SHA-256", "content": "CCCC"}]},
            {"bom-ref": "/opt/berth/lib/dual.jar", "type": "library", "group": "org.example",
             "name": "dual", "version": "1",
             "licenses": [{"license": {"id": "LGPL-2.1-or-later"}},
                          {"license": {"id": "Apache-2.0", "url": "https://example.org"}}]},
            {"bom-ref": "/opt/berth/lib/bc.jar", "type": "library", "group": "org.bouncycastle",
             "name": "bcprov-jdk18on", "version": "1.86",
             "licenses": [{"license": {"name": "Bouncy Castle Licence",
                                       "url": "https://www.bouncycastle.org/licence.html"}}]},
            {"bom-ref": "/opt/berth/lib/expr.jar", "type": "library", "group": "org.example",
             "name": "expr", "version": "2",
             "licenses": [{"expression": "MIT OR Apache-2.0"}, {"license": {"id": "BSD-3-Clause"}}]},
            {"bom-ref": "operating-system", "type": "operating-system", "name": "debian",
             "version": "12"},
            {"bom-ref": "pkg:deb/debian/libssl3@3.0.11-1?arch=amd64&upstream=openssl",
             "type": "library", "name": "libssl3", "version": "3.0.11-1",
             "purl": "pkg:deb/debian/libssl3@3.0.11-1?arch=amd64&upstream=openssl"},
            {"bom-ref": "pkg:deb/debian/zlib1g@1.2.13?arch=amd64", "type": "library",
             "name": "zlib1g", "version": "1.2.13", "purl": "pkg:deb/debian/zlib1g@1.2.13?arch=amd64"},
            {"bom-ref": "model:minilm/1", "type": "machine-learning-model", "name": "minilm-model",
             "version": "1",
             "properties": [{"name": "dev.berth:model.manifest-digest", "value": "sha256:DDDD"}]}
          ],
          "dependencies": [
            {"ref": "image", "dependsOn": ["/opt/berth/lib/ort.jar", "/opt/berth/lib/dual.jar",
                                           "/opt/berth/lib/bc.jar", "/opt/berth/lib/expr.jar",
                                           "model:minilm/1"]},
            {"ref": "/opt/berth/lib/ort.jar", "dependsOn": ["/opt/berth/lib/ort.jar!/libonnxruntime.so"]},
            {"ref": "/opt/berth/lib/ort.jar!/libonnxruntime.so"},
            {"ref": "operating-system"}
          ]
        }
        """
            .replace("AAAA", "a".repeat(64))
            .replace("BBBB", "b".repeat(64))
            .replace("CCCC", "c".repeat(64))
            .replace("DDDD", "d".repeat(64));
    return text.getBytes(StandardCharsets.UTF_8);
  }
}
