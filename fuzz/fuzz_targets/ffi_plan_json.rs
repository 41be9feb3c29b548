//! The C ABI's JSON entry points, called through their `extern "C"`
//! functions: `saferoot_plan_json` (an OCI config.json or a saferoot
//! `RootfsSpec`) and `saferoot_oci_validate`.
//!
//! Input: one byte (mode: 0 RootfsSpec, 1 OCI with bundle `/bundle`,
//! 2 OCI with a NULL bundle, 3 an `is_oci` that is neither 0 nor 1), then
//! the JSON text, cut at its first NUL as a C string would be.
//!
//! Checks: no call panics inside (that would come back as an internal
//! error); every failure is an invalid-input error with `EINVAL`, a
//! message, and the same errno the return value gives; a plan is one line
//! of valid JSON, the same text the Rust library makes of the same input,
//! and `saferoot_oci_validate` accepts exactly the configs that plan; a
//! RootfsSpec that plans survives a JSON round trip and plans the same.

#![no_main]

use std::ffi::{c_int, CStr, CString};
use std::path::Path;
use std::ptr;

use libfuzzer_sys::fuzz_target;
use saferoot::rootfs::{plan, RootfsSpec};
use saferoot_ffi::error::{
    saferoot_error_errno, saferoot_error_free, saferoot_error_kind, saferoot_error_message,
};
use saferoot_ffi::rootfs::{saferoot_oci_validate, saferoot_plan_json};
use saferoot_ffi::{saferoot_errkind, saferoot_error, saferoot_string_free};

const BUNDLE: &CStr = c"/bundle";

/// What a call gave: the plan text, or (errno, message) of the error.
type Outcome = Result<String, (c_int, String)>;

/// Checks the error `err` that came with return value `rc` (a negative
/// errno, or 0 for a NULL pointer), frees it and returns it.
fn take_error(err: *mut saferoot_error, rc: c_int) -> (c_int, String) {
    assert!(!err.is_null(), "a failure without an error");
    // SAFETY: `err` is a live error from the library, freed once below.
    let (kind, errno, msg) = unsafe {
        (
            saferoot_error_kind(err),
            saferoot_error_errno(err),
            CStr::from_ptr(saferoot_error_message(err))
                .to_string_lossy()
                .into_owned(),
        )
    };
    // SAFETY: as above; not used after this.
    unsafe { saferoot_error_free(err) };
    assert_ne!(
        kind,
        saferoot_errkind::SAFEROOT_ERRKIND_INTERNAL,
        "internal error (a panic inside the library?): {msg}"
    );
    assert_eq!(
        kind,
        saferoot_errkind::SAFEROOT_ERRKIND_INVALID_INPUT,
        "bad input must be invalid input: {msg}"
    );
    assert_eq!(errno, libc::EINVAL, "{msg}");
    if rc != 0 {
        assert_eq!(rc, -errno, "return value and error disagree: {msg}");
    }
    assert!(!msg.is_empty());
    (errno, msg)
}

fn plan_json(json: &CStr, is_oci: c_int, bundle: Option<&CStr>) -> Outcome {
    let mut err: *mut saferoot_error = ptr::null_mut();
    // SAFETY: NUL-terminated strings that outlive the call, a valid `err`.
    let s = unsafe {
        saferoot_plan_json(
            json.as_ptr(),
            is_oci,
            bundle.map_or(ptr::null(), CStr::as_ptr),
            &mut err,
        )
    };
    if s.is_null() {
        return Err(take_error(err, 0));
    }
    assert!(err.is_null(), "success with an error set");
    // SAFETY: a NUL-terminated string from the library, freed once.
    let text = unsafe { CStr::from_ptr(s) }
        .to_str()
        .expect("the plan is UTF-8")
        .to_owned();
    // SAFETY: returned by saferoot_plan_json, not used after this.
    unsafe { saferoot_string_free(s) };
    assert!(!text.contains('\n'), "the plan is one line");
    let v: serde_json::Value = serde_json::from_str(&text).expect("the plan is JSON");
    assert!(v.get("mounts").is_some_and(serde_json::Value::is_array));
    Ok(text)
}

fn validate(json: &CStr) -> Result<(), (c_int, String)> {
    let mut err: *mut saferoot_error = ptr::null_mut();
    // SAFETY: NUL-terminated strings that outlive the call, a valid `err`.
    let rc = unsafe { saferoot_oci_validate(json.as_ptr(), BUNDLE.as_ptr(), &mut err) };
    if rc == 0 {
        assert!(err.is_null());
        Ok(())
    } else {
        assert!(rc < 0);
        Err(take_error(err, rc))
    }
}

/// The Rust library's answer for the same input.
fn library(text: &str, oci: bool) -> Result<String, String> {
    let spec = if oci {
        saferoot::oci::spec_from_json(text, Path::new("/bundle")).map_err(|e| e.to_string())?
    } else {
        serde_json::from_str::<RootfsSpec>(text).map_err(|e| e.to_string())?
    };
    let p = plan(&spec).map_err(|e| e.to_string())?;
    Ok(serde_json::to_string(&p).expect("a plan serializes"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    let json = CString::new(&rest[..end]).expect("no NUL before `end`");
    let text = json.to_str().ok();
    match mode % 4 {
        0 => {
            let got = plan_json(&json, 0, None);
            // A bundle is refused with a RootfsSpec.
            assert!(plan_json(&json, 0, Some(BUNDLE)).is_err());
            let Some(text) = text else {
                assert!(got.is_err(), "accepted text that is not UTF-8");
                return;
            };
            match (&got, library(text, false)) {
                (Ok(a), Ok(b)) => assert_eq!(a, &b, "C and Rust plans differ"),
                // The C ABI also refuses members the spec does not have.
                (Err((_, msg)), Ok(_)) => assert!(msg.starts_with("spec_json: "), "{msg}"),
                (Err(_), Err(_)) => {}
                (Ok(_), Err(e)) => panic!("the C ABI planned what the library refuses: {e}"),
            }
            if let Ok(plan_text) = &got {
                // Its own JSON plans the same.
                let spec: RootfsSpec = serde_json::from_str(text).expect("accepted above");
                let again = CString::new(serde_json::to_string(&spec).expect("serializes"))
                    .expect("JSON has no NUL");
                assert_eq!(plan_json(&again, 0, None).as_ref(), Ok(plan_text));
            }
        }
        1 => {
            let got = plan_json(&json, 1, Some(BUNDLE));
            assert_eq!(
                validate(&json).is_ok(),
                got.is_ok(),
                "validate and plan disagree"
            );
            let Some(text) = text else {
                assert!(got.is_err(), "accepted text that is not UTF-8");
                return;
            };
            match (&got, library(text, true)) {
                (Ok(a), Ok(b)) => assert_eq!(a, &b, "C and Rust plans differ"),
                // C strings cannot hold NUL: the C ABI shows it as U+FFFD.
                (Err((_, a)), Err(b)) => {
                    assert_eq!(a, &b.replace('\0', "\u{fffd}"), "C and Rust errors differ")
                }
                (a, b) => panic!("the C ABI and the library disagree: {a:?} / {b:?}"),
            }
        }
        2 => {
            let (_, msg) = plan_json(&json, 1, None).expect_err("a NULL bundle is refused");
            assert!(text.is_none() || msg.contains("bundle_dir"), "{msg}");
        }
        _ => {
            let is_oci = c_int::from(mode) - 1;
            let (_, msg) = plan_json(&json, is_oci, None).expect_err("is_oci is 0 or 1");
            assert!(text.is_none() || msg.contains("is_oci"), "{msg}");
        }
    }
});
