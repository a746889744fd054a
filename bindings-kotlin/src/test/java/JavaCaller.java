// Java calls the generated Kotlin API directly: it compiles only because no
// public signature uses Kotlin's unsigned types (ULong, UByte: inline classes
// whose functions Java cannot name). Run by bindings-kotlin/test.sh.
import dev.tessera.*;
import java.time.Instant;

public class JavaCaller {
    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    public static void main(String[] args) throws Exception {
        Instant now = Instant.now();
        byte[] secret = "12345678901234567890".getBytes("US-ASCII");

        // Portal.generate / createOffer, a device scanning the QR code.
        try (Portal portal = Portal.Companion.generate("Java Bank");
             Device device = new Device(TesseraKt.newStorageKey())) {
            LinkOffer offer = portal.createOffer("anna@example.org", new OfferSettings(300L, null, null), now);
            check(offer.getExpiresAt().equals(Instant.ofEpochSecond(now.getEpochSecond() + 300)), "expiresAt");
            RecordWrite w = offer.getChange().getWrites().get(0);
            check(w instanceof RecordWrite.Offer && ((RecordWrite.Offer) w).getRow().getVersion() == 1L, "offer row");
            LinkOfferInfo info = device.scanLinkQr(offer.getQrText(), now, null);
            check(info.getPortalName().equals("Java Bank"), "portalName");
            check(info.getPasscodeRules().getMinLen() == 6, "minLen");
        }

        // hotp / verifyHotp with long counters and int digits.
        check(TesseraKt.hotp(secret, 1L, 6, OtpAlgorithm.SHA1).equals("287082"), "hotp");
        OtpVerifierConfig config = new OtpVerifierConfig(secret, null, null, null, 10L, null, null);
        OtpCheck c = TesseraKt.verifyHotp(config, new OtpVerifierState(null, 0L, 0, false, null), "359152", now);
        check(c.getVerdict() == Verdict.Accepted.INSTANCE, "verifyHotp accepted");
        check(c.getMatched() == 2L && c.getDrift() == 2L && c.getState().getNextCounter() == 3L, "matched");
        OtpCheck again = TesseraKt.verifyHotp(config, c.getState(), "359152", now);
        check(again.getVerdict() instanceof Verdict.Refused
            && ((Verdict.Refused) again.getVerdict()).getCode() == ErrorCode.OTP_MISMATCH, "used counter refused");

        // A thrown failure with its ErrorCode.
        try {
            TesseraKt.hotp(secret, 0L, 3, OtpAlgorithm.SHA1);
            throw new AssertionError("digits 3 accepted");
        } catch (TesseraException.Failure f) {
            check(f.getCode() == ErrorCode.INVALID_DIGITS, "INVALID_DIGITS");
        }
        System.out.println("ok   java: Portal.generate, createOffer, scanLinkQr, hotp, verifyHotp, TesseraException.Failure");
    }
}
