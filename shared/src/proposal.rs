//! Proposed templates: a granted probe a device offers as a new template for someone, kept
//! until a host pulls it for review ([`Request::ListProposals`](crate::Request::ListProposals),
//! then [`Request::DropProposals`](crate::Request::DropProposals)). A device never matches
//! against a proposal; an accepted one comes back as an ordinary template at the next sync.

use serde::{Deserialize, Serialize};

use crate::template::{Embedding, ModelId, PersonId, TemplateId};

/// Proposals per [`ProposalPage`] (each carries an embedding: ~1.5 KB on the wire).
pub const PROPOSALS_PER_PAGE: usize = 4;
/// Ids per [`Request::DropProposals`](crate::Request::DropProposals).
pub const DROP_PER_MESSAGE: usize = 32;

pub type ProposalId = u32;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Per device, increasing.
    pub id: ProposalId,
    pub person_id: PersonId,
    /// The template the probe matched best.
    pub matched: TemplateId,
    pub model_id: ModelId,
    /// The aligned probe embedded with its mirror image, as enrolment templates are.
    pub embedding: Embedding,
    /// When it was granted: seconds since the Unix epoch, device clock.
    pub unix_time: u64,
    pub score: f32,
    /// The decision threshold at the time.
    pub threshold: f32,
    /// Shorter side of the face box, frame pixels.
    pub face_px: u16,
    /// Variance of the Laplacian of the aligned crop (sharpness).
    pub sharpness: f32,
    /// Left-right head turn, degrees.
    pub yaw_deg: f32,
}

/// One page of [`Request::ListProposals`](crate::Request::ListProposals).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProposalPage {
    pub items: heapless::Vec<Proposal, PROPOSALS_PER_PAGE>,
    /// Cursor for the next page, `None` when this was the last.
    pub next: Option<ProposalId>,
    /// Proposals the device holds.
    pub total: u32,
}
