//! Item 1 of the linking review: a relay between the phone and the portal.
//!
//! The relay shows the phone a look-alike QR code (the real offer
//! commitment and portal name, the relay's own key), decrypts the phone's
//! request, and links its own request at the real portal. Before the fix it
//! ground its ephemeral key until the portal's expected check code equalled
//! the phone's (about 350,000 tries). Now the check code depends on the
//! portal nonce, committed to in the QR code and revealed only in the
//! answer, after the relay's key is fixed: the relay gets one guess in 10^6
//! per offer. This harness performs the attack at full strength: it grinds
//! `TESSERA_RELAY_GRIND` (default 1,000,000) ephemeral keys once it knows
//! the nonce, finds keys whose code would match, and still never links.

use super::device::build_request;
use super::tests::{offer_of, pending_of, world};
use super::*;
use crate::crypto::{generate_secret_key, SeededRandom};
use crate::host::Write;
use alloc::vec::Vec;
use p256::elliptic_curve::point::{AffineCoordinates, BatchNormalize};
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::elliptic_curve::Group;
use p256::{ProjectivePoint, PublicKey};

const T0: u64 = 1_767_225_600;
const KEY: [u8; 32] = [0x42; 32];

fn grind_count() -> u64 {
    std::env::var("TESSERA_RELAY_GRIND").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000)
}

#[test]
fn a_relay_that_grinds_a_million_keys_never_links() {
    let mut w = world();
    let mut relay_rng = SeededRandom::new([0x66; 32]);
    // The relay's own portal identity, with the real portal's name.
    let relay = Portal::generate("Example Bank", &mut relay_rng).unwrap();
    let offer = w.portal.create_offer("anna", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let real = scan_link_qr(&offer.qr_text, T0).unwrap();

    // 1. The look-alike QR: same commitment, name, expiry and policy; relay key.
    let mut m = super::messages::LinkOffer::decode(&offer.qr_text).unwrap();
    m.portal_pk = relay.public_key();
    let fake_qr = m.encode();
    let on_phone = scan_link_qr(&fake_qr, T0).unwrap();
    assert_eq!(on_phone.portal_name, real.portal_name, "the phone cannot tell");
    let phone = start_link(&on_phone, "Anna's Pixel", "493817", false, false, T0 + 1, &mut w.rng).unwrap();
    let from_phone = relay.open_link_request(&phone.request).unwrap();

    // 2. The relay links its own request at the real portal and learns the
    //    nonce from the answer (it holds the request's keys).
    let e2 = generate_secret_key(&mut relay_rng).unwrap();
    let d2 = generate_secret_key(&mut relay_rng).unwrap();
    let relayed = build_request(&real, "Anna's Pixel", "000000", false, e2.clone(), d2, &[9u8; 32]);
    let opened = w.portal.open_link_request(&relayed.request).unwrap();
    let out = opened.accept(&w.portal, Some(&offer.record), DeviceKeyUse::Fresh, T0 + 2);
    assert_eq!(out.outcome.result, Ok(Accept::Accepted));
    let used = offer_of(&out);
    let mut pending = pending_of(&out);
    let (shared2, th2) = opened.secrets_for_test();
    let keys = answer_keys(&shared2, &real.commitment, &th2, true);
    let answer = super::messages::LinkAnswer::decode(&out.answer).unwrap();
    assert!(answer.accepted);
    let super::messages::AnswerBody::Accepted(body) = answer.open(&keys, &th2).unwrap() else { panic!() };
    let nonce = body.portal_nonce;
    let portal_code = check_code(&check_code_key(&shared2, &real.commitment, &th2), &nonce, &th2);

    // 3. The relay answers the phone with the real nonce; the phone checks
    //    the nonce against the QR commitment and shows its check code.
    let to_phone = from_phone.forge_accepted(nonce, "anna", T0 + 2);
    let phone_linked = finish_link(phone.pending, &to_phone, &KEY, &mut w.rng).unwrap();
    assert_ne!(*portal_code, phone_linked.check_code, "one guess in 10^6, and this seed does not hit it");

    // 4. Knowing the nonce now, the relay grinds ephemeral keys e2 + k for
    //    the portal-side code that would equal the phone's.
    let portal_point = ProjectivePoint::from(*PublicKey::from_sec1_bytes(&w.portal.public_key()).unwrap().as_affine());
    let mut eph = ProjectivePoint::from(*e2.public_key().as_affine());
    let mut shared = portal_point * *e2.to_nonzero_scalar();
    let d2_pk: [u8; 33] = pending.device_pk.expose().try_into().unwrap();
    let (n, mut hits) = (grind_count(), Vec::new());
    // In chunks, with one field inversion per chunk (batch normalisation),
    // as a real attacker would.
    const CHUNK: usize = 256;
    let mut k0 = 0u64;
    while k0 < n {
        let m = (CHUNK as u64).min(n - k0) as usize;
        let mut points = [ProjectivePoint::IDENTITY; 2 * CHUNK];
        for i in 0..m {
            eph += ProjectivePoint::generator();
            shared += portal_point;
            points[2 * i] = eph;
            points[2 * i + 1] = shared;
        }
        let affine = <ProjectivePoint as BatchNormalize<[ProjectivePoint; 2 * CHUNK]>>::batch_normalize(&points);
        for (i, pair) in affine.chunks(2).take(m).enumerate() {
            let eph_bytes = pair[0].to_sec1_point(true);
            let x: [u8; 32] = pair[1].x().into();
            let th = transcript(&TranscriptInput {
                portal_pk: &w.portal.public_key(),
                eph_pk: eph_bytes.as_bytes(),
                device_pk: &d2_pk,
                commitment: &real.commitment,
                biometrics: false,
                policy: PasscodePolicy::default(),
                device_name: "Anna's Pixel",
            });
            if *check_code(&check_code_key(&x, &real.commitment, &th), &nonce, &th) == phone_linked.check_code {
                hits.push(k0 + i as u64 + 1);
            }
        }
        k0 += m as u64;
    }
    std::eprintln!("relay ground {n} keys after the nonce was revealed: {} would match the phone's code", hits.len());

    // 5. Every matching key is useless: the offer is spent.
    for k in hits.iter().take(3) {
        let scalar = *e2.to_nonzero_scalar().as_ref() + p256::Scalar::from(*k);
        let sk = p256::SecretKey::from_bytes(&scalar.to_bytes()).unwrap();
        let d = generate_secret_key(&mut relay_rng).unwrap();
        let again = build_request(&real, "Anna's Pixel", "000000", false, sk, d, &[9u8; 32]);
        let o = w.portal.open_link_request(&again.request).unwrap().accept(
            &w.portal,
            Some(&used),
            DeviceKeyUse::Fresh,
            T0 + 30,
        );
        assert_eq!(o.outcome.result.unwrap_err().code(), ErrorCode::TokenAlreadyUsed);
        assert!(o.outcome.writes.is_empty());
    }

    // 6. The user types the phone's code on the real portal: refused; five
    //    tries and the relay's pending link is cancelled. Nothing links.
    for i in 1..=MAX_CONFIRM_ATTEMPTS {
        let o = w.portal.confirm_link(&pending, &phone_linked.check_code, T0 + 40);
        let expect = if i < MAX_CONFIRM_ATTEMPTS { ErrorCode::CheckCodeMismatch } else { ErrorCode::LockedOut };
        assert_eq!(o.result.unwrap_err().code(), expect);
        assert!(o.writes.iter().all(|w| !matches!(w, Write::Device(_))));
        let Some(Write::PendingLink(p)) = o.writes.into_iter().next() else { panic!() };
        pending = p;
    }
    assert!(pending.is_closed());
}

#[test]
fn a_relayed_answer_with_another_nonce_is_refused_by_the_phone() {
    let mut w = world();
    let mut relay_rng = SeededRandom::new([0x67; 32]);
    let relay = Portal::generate("Example Bank", &mut relay_rng).unwrap();
    let offer = w.portal.create_offer("anna", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let mut m = super::messages::LinkOffer::decode(&offer.qr_text).unwrap();
    m.portal_pk = relay.public_key();
    let on_phone = scan_link_qr(&m.encode(), T0).unwrap();
    let phone = start_link(&on_phone, "Pixel", "493817", false, false, T0 + 1, &mut w.rng).unwrap();
    let from_phone = relay.open_link_request(&phone.request).unwrap();
    // Without the real nonce the relay must invent one: the phone refuses it
    // and keeps its pending link (an unauthenticated fault is not final).
    let e = finish_link(phone.pending.clone(), &from_phone.forge_accepted([5u8; 32], "anna", T0 + 2), &KEY, &mut w.rng)
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::MessageTampered);
    assert!(e.retry.is_some());
}
