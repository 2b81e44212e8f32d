package dev.berth.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.InvalidInputException;
import org.junit.jupiter.api.Test;

class OciReferenceTest {
  @Test
  void readsHostPortRepositoryTagAndDigest() {
    OciReference r = OciReference.parse("oci://127.0.0.1:5000/team/minilm:1.0");
    assertEquals("127.0.0.1:5000", r.registry());
    assertEquals("team/minilm", r.repository());
    assertEquals("1.0", r.tag());
    assertNull(r.digest());
    assertEquals("http://127.0.0.1:5000/v2/team/minilm/", r.apiBase());

    String digest = "sha256:" + "ab".repeat(32);
    OciReference d = OciReference.parse("oci://registry.example.com/minilm@" + digest);
    assertNull(d.tag());
    assertEquals(digest, d.manifestReference());
    assertEquals("https://registry.example.com/v2/minilm/", d.apiBase());

    assertEquals("latest", OciReference.parse("oci://localhost/m").tag());
    assertEquals("oci://localhost/m:latest", OciReference.parse("oci://localhost/m").toString());
  }

  @Test
  void onlyLoopbackRegistriesGoOverPlainHttp() {
    assertTrue(OciReference.parse("oci://localhost:5000/m").plainHttp());
    assertTrue(OciReference.parse("oci://127.0.0.2/m").plainHttp());
    assertTrue(OciReference.parse("oci://[::1]:5000/m").plainHttp());
    assertFalse(OciReference.parse("oci://10.0.0.1:5000/m").plainHttp());
    assertFalse(OciReference.parse("oci://registry.local/m").plainHttp());
  }

  @Test
  void badReferencesSayWhatIsWrongAndTheFormExpected() {
    for (String[] bad :
        new String[][] {
          {"docker://h/m", "does not start with oci://"},
          {"oci://h", "names no registry host and repository"},
          {"oci://h/Team/M", "not a valid repository"},
          {"oci://h/m:bad tag", "not a valid tag"},
          {"oci://h/m@sha256:abc", "not a digest"},
        }) {
      InvalidInputException e =
          assertThrows(InvalidInputException.class, () -> OciReference.parse(bad[0]));
      assertTrue(e.getMessage().contains(bad[1]), e.getMessage());
      assertTrue(e.getMessage().contains("oci://HOST[:PORT]/REPOSITORY[:TAG]"), e.getMessage());
    }
  }
}
