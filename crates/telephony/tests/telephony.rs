//! Tests of `earshot-telephony`: one binary, a module per topic.

mod telephony {
    mod dtmf;
    mod g711;
    mod jitter;
    mod leg;
    mod pair;
    mod recorder;
    mod registration;
    mod rtp;
    mod sdp;
    mod srtp;
}
