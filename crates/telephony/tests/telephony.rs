//! Tests of `earshot-telephony`: one binary, a module per topic.

mod telephony {
    mod dtmf;
    mod g711;
    mod recorder;
    mod rtp;
    mod sdp;
}
