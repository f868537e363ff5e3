//! The few libpam calls the module makes, and the conversation that shows messages.
//!
//! libpam is not linked: the process that `dlopen`s the module already has it, and Linux
//! resolves the undefined symbols from there. Layouts and numbers are Linux-PAM's.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;

pub const PAM_SUCCESS: c_int = 0;
pub const PAM_SERVICE_ERR: c_int = 3;
pub const PAM_SYSTEM_ERR: c_int = 4;
pub const PAM_BUF_ERR: c_int = 5;
pub const PAM_AUTH_ERR: c_int = 7;
pub const PAM_AUTHINFO_UNAVAIL: c_int = 9;
pub const PAM_USER_UNKNOWN: c_int = 10;
pub const PAM_CONV_ERR: c_int = 19;
pub const PAM_IGNORE: c_int = 25;

pub const PAM_SERVICE: c_int = 1;
pub const PAM_USER: c_int = 2;
pub const PAM_TTY: c_int = 3;
pub const PAM_RHOST: c_int = 4;
pub const PAM_CONV: c_int = 5;

/// `flags` bit: the application asked for no messages.
pub const PAM_SILENT: c_int = 0x8000;

pub const PAM_ERROR_MSG: c_int = 3;
pub const PAM_TEXT_INFO: c_int = 4;

/// `struct pam_message`.
#[repr(C)]
pub struct PamMessage {
    pub msg_style: c_int,
    pub msg: *const c_char,
}

/// `struct pam_response`: allocated by the application with malloc, freed by us.
#[repr(C)]
pub struct PamResponse {
    pub resp: *mut c_char,
    pub resp_retcode: c_int,
}

/// `struct pam_conv`.
#[repr(C)]
pub struct PamConv {
    pub conv: Option<
        unsafe extern "C" fn(
            num_msg: c_int,
            msg: *mut *const PamMessage,
            resp: *mut *mut PamResponse,
            appdata_ptr: *mut c_void,
        ) -> c_int,
    >,
    pub appdata_ptr: *mut c_void,
}

extern "C" {
    pub fn pam_get_user(pamh: *mut c_void, user: *mut *const c_char, prompt: *const c_char) -> c_int;
    pub fn pam_get_item(pamh: *const c_void, item_type: c_int, item: *mut *const c_void) -> c_int;
}

/// A non-null `pam_handle_t *`, valid for the duration of one `pam_sm_*` call.
#[derive(Debug)]
pub struct Pam {
    handle: *mut c_void,
}

impl Pam {
    /// `None` for a null handle.
    ///
    /// # Safety
    /// A non-null `handle` must be the live PAM handle passed to the current `pam_sm_*` call.
    pub unsafe fn new(handle: *mut c_void) -> Option<Pam> {
        (!handle.is_null()).then_some(Pam { handle })
    }

    /// The user being authenticated (asks the application if PAM does not know yet).
    pub fn user(&self) -> Result<String, c_int> {
        let mut user: *const c_char = ptr::null();
        // SAFETY: valid handle (see `new`); PAM keeps the string alive for this call.
        let rc = unsafe { pam_get_user(self.handle, &mut user, ptr::null()) };
        if rc != PAM_SUCCESS {
            return Err(rc);
        }
        if user.is_null() {
            return Err(PAM_USER_UNKNOWN);
        }
        // SAFETY: PAM returns a NUL-terminated string.
        let user = unsafe { CStr::from_ptr(user) };
        user.to_str().map(str::to_owned).map_err(|_| PAM_USER_UNKNOWN)
    }

    /// A string item (PAM_SERVICE, PAM_RHOST, ...); `None` when unset. Non-UTF-8 bytes are
    /// replaced, so a set item is never mistaken for an unset one.
    pub fn item_str(&self, item_type: c_int) -> Option<String> {
        let p = self.item(item_type)?;
        // SAFETY: string items are NUL-terminated strings owned by PAM.
        Some(unsafe { CStr::from_ptr(p.cast::<c_char>()) }.to_string_lossy().into_owned())
    }

    fn item(&self, item_type: c_int) -> Option<*const c_void> {
        let mut p: *const c_void = ptr::null();
        // SAFETY: valid handle (see `new`).
        let rc = unsafe { pam_get_item(self.handle, item_type, &mut p) };
        (rc == PAM_SUCCESS && !p.is_null()).then_some(p)
    }

    /// Shows `text` with `style` (PAM_TEXT_INFO or PAM_ERROR_MSG) through the application's
    /// conversation. Returns the conversation's code; without a conversation, nothing is shown.
    pub fn say(&self, style: c_int, text: &str) -> c_int {
        let Some(conv) = self.item(PAM_CONV) else { return PAM_CONV_ERR };
        // SAFETY: the PAM_CONV item is a `struct pam_conv`.
        let conv = unsafe { &*conv.cast::<PamConv>() };
        let Some(func) = conv.conv else { return PAM_CONV_ERR };
        let Ok(text) = CString::new(text.replace('\0', "")) else { return PAM_BUF_ERR };
        let message = PamMessage { msg_style: style, msg: text.as_ptr() };
        let mut messages = [&message as *const PamMessage];
        let mut responses: *mut PamResponse = ptr::null_mut();
        // SAFETY: one message, as declared; `text` and `message` outlive the call.
        let rc = unsafe { func(1, messages.as_mut_ptr(), &mut responses, conv.appdata_ptr) };
        if !responses.is_null() {
            // SAFETY: the application malloc'd an array of `num_msg` responses (and their
            // strings), which the module owns and frees.
            unsafe {
                libc::free((*responses).resp.cast());
                libc::free(responses.cast());
            }
        }
        rc
    }
}
