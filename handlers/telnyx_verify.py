"""Telnyx Verify. Until the engine lands (issue #3) every operation answers from the spec's examples."""

from __future__ import annotations

GENERIC = frozenset(
    {
        "CreateVerificationSms",
        "CreateVerificationCall",
        "CreateFlashcallVerification",
        "CreateWhatsappVerification",
        "CreateVerificationDtmfConfirm",
        "RetrieveVerification",
        "VerifyVerificationCodeById",
        "ListVerifications",
        "VerifyVerificationCodeByPhoneNumber",
        "ListProfiles",
        "CreateVerifyProfile",
        "GetVerifyProfile",
        "UpdateVerifyProfile",
        "DeleteProfile",
        "ListProfileMessageTemplates",
        "CreateMessageTemplate",
        "UpdateMessageTemplate",
    }
)
