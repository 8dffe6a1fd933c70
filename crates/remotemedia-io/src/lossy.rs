//! The lossy encoders behind [`crate::AudioWriter`]: Ogg Vorbis (aoTuV libvorbis), Ogg Opus
//! (libopus, in Rust) and MP3 (LAME). Each takes interleaved float frames (full scale 1.0) and
//! appends finished bytes to a buffer the writer hands on to its file.
//!
//! Exact lengths survive a round trip: Opus streams carry their pre-skip and end trim in the Ogg
//! granule positions (RFC 7845), MP3 files a LAME tag with the encoder delay and padding, and
//! Vorbis the granule of the last page; decoders that honour them (libsndfile, ffmpeg, ours)
//! give back as many frames as were written.

use std::sync::{Arc, Mutex};

/// What a lossy encoder does for the writer.
pub(crate) trait LossyEncoder: Send {
    /// Encodes interleaved frames, appending whatever bytes are complete to `out`.
    fn push(&mut self, interleaved: &[f32], out: &mut Vec<u8>) -> Result<(), String>;
    /// Encodes what the codec still holds and ends the stream.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String>;
    /// Bytes written over the start of the file once it is complete (MP3's LAME tag, which
    /// holds the exact length), if the format has them.
    fn header(&self) -> Option<Vec<u8>> {
        None
    }
}

/// 0 = best quality/largest, 1 = smallest, as soundfile's `compression_level`.
fn level_or(level: Option<f32>, default: f32) -> f32 {
    level.unwrap_or(default).clamp(0.0, 1.0)
}

/// A serial number for an Ogg logical stream (the spec asks for a random one, so that chained
/// or multiplexed streams differ).
fn ogg_serial() -> u32 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let x = nanos ^ ((std::process::id() as u64) << 32);
    // splitmix64's finaliser: nearby clocks give unrelated serials.
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u32
}

/// Vorbis channel order (used by Ogg Opus's family 1 too) for 3 to 8 channels: entry `i` is the
/// WAV/SMPTE-order channel (the order remotemedia, soundfile and WAV files use) that goes `i`th.
/// E.g. 5.1: WAV FL FR FC LFE BL BR -> Vorbis FL FC FR BL BR LFE (Vorbis I spec, section 4.3.9).
pub(crate) fn vorbis_order(channels: usize) -> Option<&'static [usize]> {
    Some(match channels {
        3 => &[0, 2, 1],
        4 => &[0, 1, 2, 3],
        5 => &[0, 2, 1, 3, 4],
        6 => &[0, 2, 1, 4, 5, 3],
        7 => &[0, 2, 1, 5, 6, 4, 3],
        8 => &[0, 2, 1, 6, 7, 4, 5, 3],
        _ => return None,
    })
}

/// Interleaved WAV-order frames to Vorbis order (a copy; only for 3 to 8 channels).
fn to_vorbis_order(interleaved: &[f32], order: &[usize]) -> Vec<f32> {
    let ch = order.len();
    let mut out = Vec::with_capacity(interleaved.len());
    for frame in interleaved.chunks_exact(ch) {
        out.extend(order.iter().map(|&c| frame[c]));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Ogg Vorbis

/// A `Write` whose bytes the writer takes out after each call (the Vorbis encoder owns its sink).
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("unpoisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn drain_into(&self, out: &mut Vec<u8>) {
        out.append(&mut self.0.lock().expect("unpoisoned"));
    }
}

pub(crate) struct VorbisOut {
    enc: Option<vorbis_rs::VorbisEncoder<Shared>>,
    bytes: Shared,
    channels: usize,
    planar: Vec<Vec<f32>>,
}

// SAFETY: the encoder's libvorbis/libogg state is plain heap memory reached only through
// `&mut self`; nothing in it is tied to the thread that made it.
unsafe impl Send for VorbisOut {}

/// libvorbis slows down sharply on very large blocks (vorbis_rs's notes); blocks are cut to this.
const VORBIS_BLOCK: usize = 8192;

impl VorbisOut {
    pub(crate) fn new(rate: u32, channels: u16, level: Option<f32>) -> Result<Self, String> {
        use std::num::{NonZeroU32, NonZeroU8};
        let ch = u8::try_from(channels)
            .ok()
            .and_then(NonZeroU8::new)
            .ok_or_else(|| format!("Vorbis stores 1 to 255 channels, not {channels}"))?;
        let rate = NonZeroU32::new(rate).ok_or("a sample rate of 0 Hz")?;
        let bytes = Shared::default();
        // libsndfile's default quality is 0.4 (about 128 kbit/s for 44.1 kHz stereo); level
        // maps to quality 1 - level as there.
        let quality = 1.0 - level_or(level, 0.6);
        let enc = vorbis_rs::VorbisEncoderBuilder::new_with_serial(
            rate,
            ch,
            bytes.clone(),
            ogg_serial() as i32,
        )
        .bitrate_management_strategy(vorbis_rs::VorbisBitrateManagementStrategy::QualityVbr {
            target_quality: quality,
        })
        .build()
        .map_err(|e| format!("the Vorbis encoder refused the stream: {e}"))?;
        Ok(Self {
            enc: Some(enc),
            bytes,
            channels: channels as usize,
            planar: vec![Vec::new(); channels as usize],
        })
    }
}

impl LossyEncoder for VorbisOut {
    fn push(&mut self, interleaved: &[f32], out: &mut Vec<u8>) -> Result<(), String> {
        let enc = self.enc.as_mut().ok_or("the stream is finished")?;
        for block in interleaved.chunks(VORBIS_BLOCK * self.channels) {
            let order = vorbis_order(self.channels);
            for (i, plane) in self.planar.iter_mut().enumerate() {
                let c = order.map_or(i, |o| o[i]);
                plane.clear();
                plane.extend(block.iter().skip(c).step_by(self.channels));
            }
            enc.encode_audio_block(&self.planar)
                .map_err(|e| format!("Vorbis encoding failed: {e}"))?;
        }
        self.bytes.drain_into(out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        if let Some(enc) = self.enc.take() {
            enc.finish()
                .map_err(|e| format!("Vorbis encoding failed: {e}"))?;
        }
        self.bytes.drain_into(out);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Ogg Opus (RFC 7845)

/// The rates libopus encodes at; others must be resampled first.
pub const OPUS_RATES: [u32; 5] = [8000, 12000, 16000, 24000, 48000];

pub(crate) struct OpusOut {
    enc: *mut unsafe_libopus::OpusMSEncoder,
    ogg: ogg::PacketWriter<'static, Vec<u8>>,
    serial: u32,
    channels: usize,
    /// Frames per packet at the input rate (20 ms).
    frame: usize,
    /// 48 kHz samples per input frame.
    scale: u64,
    /// The encoder's lookahead in 48 kHz samples (the decoder drops them).
    pre_skip: u64,
    pending: Vec<f32>,
    input_frames: u64,
    packets: u64,
    packet: Vec<u8>,
    finished: bool,
    /// Vorbis channel order for mapping family 1.
    order: Option<&'static [usize]>,
}

// SAFETY: the libopus encoder state is one heap block reached only through `&mut self`; libopus
// keeps no thread-local or global mutable state.
unsafe impl Send for OpusOut {}

impl Drop for OpusOut {
    fn drop(&mut self) {
        // SAFETY: made by opus_multistream_surround_encoder_create, freed once here.
        unsafe { unsafe_libopus::opus_multistream_encoder_destroy(self.enc) }
    }
}

fn opus_error(code: i32) -> String {
    let name = match code {
        unsafe_libopus::OPUS_BAD_ARG => "bad argument",
        unsafe_libopus::OPUS_BUFFER_TOO_SMALL => "buffer too small",
        unsafe_libopus::OPUS_INTERNAL_ERROR => "internal error",
        unsafe_libopus::OPUS_INVALID_PACKET => "invalid packet",
        unsafe_libopus::OPUS_UNIMPLEMENTED => "unimplemented",
        unsafe_libopus::OPUS_INVALID_STATE => "invalid state",
        unsafe_libopus::OPUS_ALLOC_FAIL => "allocation failed",
        _ => "unknown error",
    };
    format!("libopus: {name} ({code})")
}

fn opus_ctl(
    enc: *mut unsafe_libopus::OpusMSEncoder,
    request: i32,
    value: i32,
) -> Result<(), String> {
    use unsafe_libopus::varargs::{VarArg, VarArgs};
    // SAFETY: `enc` is a live encoder; the request takes one i32.
    let r = unsafe {
        unsafe_libopus::opus_multistream_encoder_ctl_impl(
            enc,
            request,
            VarArgs::new(vec![VarArg::I32(value)]),
        )
    };
    if r == unsafe_libopus::OPUS_OK {
        Ok(())
    } else {
        Err(opus_error(r))
    }
}

impl OpusOut {
    pub(crate) fn new(rate: u32, channels: u16, level: Option<f32>) -> Result<Self, String> {
        use unsafe_libopus::varargs::{VarArg, VarArgs};
        if !OPUS_RATES.contains(&rate) {
            return Err(format!(
                "Opus encodes 8000, 12000, 16000, 24000 or 48000 Hz, not {rate} Hz; resample \
                 first (AudioResampleNode target_rate=48000, or write .ogg Vorbis / .flac, which \
                 take any rate)"
            ));
        }
        if channels == 0 || channels > 255 {
            return Err(format!("Opus stores 1 to 255 channels, not {channels}"));
        }
        // RFC 7845 mapping families: 0 = mono/stereo, 1 = Vorbis-order surround up to 8,
        // 255 = that many independent channels.
        let family = match channels {
            1 | 2 => 0,
            3..=8 => 1,
            _ => 255,
        };
        let (mut streams, mut coupled, mut err) = (0i32, 0i32, 0i32);
        let mut mapping = vec![0u8; channels as usize];
        // SAFETY: out-pointers are valid; `mapping` holds `channels` bytes.
        let enc = unsafe {
            unsafe_libopus::opus_multistream_surround_encoder_create(
                rate as i32,
                channels as i32,
                family,
                &mut streams,
                &mut coupled,
                mapping.as_mut_ptr(),
                unsafe_libopus::OPUS_APPLICATION_AUDIO,
                &mut err,
            )
        };
        if enc.is_null() || err != unsafe_libopus::OPUS_OK {
            return Err(format!(
                "the Opus encoder refused the stream: {}",
                opus_error(err)
            ));
        }
        let mut me = Self {
            enc,
            ogg: ogg::PacketWriter::new(Vec::new()),
            serial: ogg_serial(),
            channels: channels as usize,
            frame: rate as usize / 50,
            scale: 48_000 / rate as u64,
            pre_skip: 0,
            pending: Vec::new(),
            input_frames: 0,
            packets: 0,
            packet: vec![0u8; 4000 * streams.max(1) as usize],
            finished: false,
            order: if family == 1 {
                vorbis_order(channels as usize)
            } else {
                None
            },
        };
        if let Some(level) = level {
            // Per channel: 128 kbit/s at level 0 down to 8 kbit/s at level 1, geometrically
            // (libopus's own default, OPUS_AUTO, is kept when no level is given).
            let per_channel = 128_000.0 * (8.0f32 / 128.0).powf(level.clamp(0.0, 1.0));
            opus_ctl(
                enc,
                unsafe_libopus::OPUS_SET_BITRATE_REQUEST,
                (per_channel * channels as f32) as i32,
            )?;
        }
        let mut lookahead = 0i32;
        // SAFETY: `enc` is live; the request writes one i32.
        let r = unsafe {
            unsafe_libopus::opus_multistream_encoder_ctl_impl(
                enc,
                unsafe_libopus::OPUS_GET_LOOKAHEAD_REQUEST,
                VarArgs::new(vec![VarArg::I32Out(&mut lookahead)]),
            )
        };
        if r != unsafe_libopus::OPUS_OK {
            return Err(opus_error(r));
        }
        me.pre_skip = lookahead as u64 * me.scale;

        // Identification header (its own page), then the comment header (its own page).
        let mut head = Vec::with_capacity(21 + channels as usize);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(channels as u8);
        head.extend_from_slice(&(me.pre_skip as u16).to_le_bytes());
        head.extend_from_slice(&rate.to_le_bytes()); // the input rate, for information
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(family as u8);
        if family != 0 {
            head.push(streams as u8);
            head.push(coupled as u8);
            head.extend_from_slice(&mapping);
        }
        let vendor = concat!(
            "remotemedia ",
            env!("CARGO_PKG_VERSION"),
            " (libopus 1.3.1)"
        );
        let mut tags = Vec::with_capacity(16 + vendor.len());
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor.as_bytes());
        tags.extend_from_slice(&0u32.to_le_bytes()); // no user comments
        let end = ogg::PacketWriteEndInfo::EndPage;
        let io = |e: std::io::Error| e.to_string();
        me.ogg.write_packet(head, me.serial, end, 0).map_err(io)?;
        let end = ogg::PacketWriteEndInfo::EndPage;
        me.ogg.write_packet(tags, me.serial, end, 0).map_err(io)?;
        Ok(me)
    }

    /// Encodes one packet of `self.frame` frames from the front of `pending`.
    fn encode_one(&mut self, last: bool, final_granule: u64) -> Result<(), String> {
        let n = self.frame * self.channels;
        // SAFETY: `pending` holds at least `n` floats; `packet` is writable for its length.
        let len = unsafe {
            unsafe_libopus::opus_multistream_encode_float(
                self.enc,
                self.pending.as_ptr(),
                self.frame as i32,
                self.packet.as_mut_ptr(),
                self.packet.len() as i32,
            )
        };
        if len < 0 {
            return Err(format!("Opus encoding failed: {}", opus_error(len)));
        }
        self.pending.drain(..n);
        self.packets += 1;
        // Granule: 48 kHz samples decodable up to this packet's end, pre-skip included; the
        // last page's is the exact end (the decoder trims what lies beyond it).
        let decoded = self.packets * self.frame as u64 * self.scale;
        let (granule, end) = if last {
            (final_granule, ogg::PacketWriteEndInfo::EndStream)
        } else if self.packets % 50 == 0 {
            (decoded, ogg::PacketWriteEndInfo::EndPage) // a page a second
        } else {
            (decoded, ogg::PacketWriteEndInfo::NormalPacket)
        };
        self.ogg
            .write_packet(
                self.packet[..len as usize].to_vec(),
                self.serial,
                end,
                granule,
            )
            .map_err(|e| e.to_string())
    }
}

impl LossyEncoder for OpusOut {
    fn push(&mut self, interleaved: &[f32], out: &mut Vec<u8>) -> Result<(), String> {
        if self.finished {
            return Err("the stream is finished".into());
        }
        match self.order {
            Some(order) => self.pending.extend(to_vorbis_order(interleaved, order)),
            None => self.pending.extend_from_slice(interleaved),
        }
        self.input_frames += (interleaved.len() / self.channels) as u64;
        while self.pending.len() >= self.frame * self.channels {
            self.encode_one(false, 0)?;
        }
        out.append(self.ogg.inner_mut());
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let final_granule = self.pre_skip + self.input_frames * self.scale;
        // Enough packets that the decoded stream covers the pre-skip and every input frame;
        // the padding is silence.
        let frame = self.frame as u64 * self.scale;
        let total_packets = final_granule.div_ceil(frame).max(1);
        while self.packets < total_packets {
            let need = self.frame * self.channels;
            if self.pending.len() < need {
                self.pending.resize(need, 0.0);
            }
            let last = self.packets + 1 == total_packets;
            self.encode_one(last, final_granule)?;
        }
        out.append(self.ogg.inner_mut());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// MP3 (LAME)

/// The rates MPEG-1/2/2.5 layer III stores.
#[cfg(feature = "mp3")]
pub const MP3_RATES: [u32; 9] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];

#[cfg(feature = "mp3")]
pub(crate) struct Mp3Out {
    enc: mp3lame_encoder::Encoder,
    channels: usize,
}

#[cfg(feature = "mp3")]
impl Mp3Out {
    pub(crate) fn new(rate: u32, channels: u16, level: Option<f32>) -> Result<Self, String> {
        use mp3lame_encoder::{Builder, Quality, VbrMode};
        if !MP3_RATES.contains(&rate) {
            return Err(format!(
                "MP3 stores 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100 or 48000 Hz, \
                 not {rate} Hz; resample first (AudioResampleNode), or write .ogg/.flac"
            ));
        }
        if !(1..=2).contains(&channels) {
            return Err(format!(
                "MP3 stores 1 or 2 channels, not {channels}; write .ogg (Vorbis or Opus) or \
                 .flac for more"
            ));
        }
        let bad = |e: mp3lame_encoder::BuildError| format!("LAME refused the stream: {e:?}");
        let mut b = Builder::new().ok_or("LAME could not allocate an encoder")?;
        b.set_sample_rate(rate).map_err(bad)?;
        // The same rate out: LAME would otherwise pick one and resample without a word.
        b.set_output_sample_rate(std::num::NonZeroU32::new(rate))
            .map_err(bad)?;
        b.set_num_channels(channels as u8).map_err(bad)?;
        b.set_quality(Quality::NearBest).map_err(bad)?; // algorithm quality (-q 2)
                                                        // VBR quality V0 (best) .. V9 (smallest); default V2 (~190 kbit/s at 44.1 kHz
                                                        // stereo, LAME's "standard" preset).
        let v = (level_or(level, 2.0 / 9.0) * 9.0).round() as u8;
        let vbr = [
            Quality::Best,
            Quality::SecondBest,
            Quality::NearBest,
            Quality::VeryNice,
            Quality::Nice,
            Quality::Good,
            Quality::Decent,
            Quality::Ok,
            Quality::SecondWorst,
            Quality::Worst,
        ][v.min(9) as usize];
        b.set_vbr_mode(VbrMode::Mtrh).map_err(bad)?;
        b.set_vbr_quality(vbr).map_err(bad)?;
        // The LAME tag (its first frame) holds the encoder delay and padding, so decoders give
        // back exactly the frames written.
        b.set_to_write_vbr_tag(true).map_err(bad)?;
        let enc = b.build().map_err(bad)?;
        Ok(Self {
            enc,
            channels: channels as usize,
        })
    }
}

#[cfg(feature = "mp3")]
impl LossyEncoder for Mp3Out {
    fn push(&mut self, interleaved: &[f32], out: &mut Vec<u8>) -> Result<(), String> {
        use mp3lame_encoder::{InterleavedPcm, MonoPcm};
        let fail = |e: mp3lame_encoder::EncodeError| format!("MP3 encoding failed: {e:?}");
        // LAME's documented worst case: 1.25 x samples + 7200 bytes.
        for block in interleaved.chunks(1 << 16) {
            let frames = block.len() / self.channels;
            out.reserve(frames * 5 / 4 + 7200);
            if self.channels == 1 {
                self.enc.encode_to_vec(MonoPcm(block), out).map_err(fail)?;
            } else {
                self.enc
                    .encode_to_vec(InterleavedPcm(block), out)
                    .map_err(fail)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        // lame_encode_flush: the last frame padded with silence (the LAME tag says how much).
        // Not the "nogap" flush, which keeps the tail for a next track and drops it here.
        out.reserve(7200);
        self.enc
            .flush_to_vec::<mp3lame_encoder::FlushGap>(out)
            .map_err(|e| format!("MP3 encoding failed: {e:?}"))?;
        Ok(())
    }

    fn header(&self) -> Option<Vec<u8>> {
        let mut tag = Vec::with_capacity(self.enc.lame_tag_size());
        self.enc.lame_tag_encode_to_vec(&mut tag).map(|_| tag)
    }
}

// ---------------------------------------------------------------------------------------------
// Opus decoding (symphonia demuxes the Ogg pages and works out the trims; it has no Opus decoder)

/// Decodes an Opus stream's packets at the rate it was made from when libopus can (8, 12, 16,
/// 24 or 48 kHz, as libsndfile does), else at 48 kHz.
pub(crate) struct OpusIn {
    dec: *mut unsafe_libopus::OpusMSDecoder,
    channels: usize,
    rate: u32,
    /// 48 kHz samples per output frame (the trims come in 48 kHz samples).
    div: u64,
    gain: f32,
    buf: Vec<f32>,
    /// 48 kHz samples still to drop from the start (the pre-skip).
    to_skip: u64,
    /// 48 kHz samples the stream starts with that are not audio (the pre-skip).
    pre_skip: u64,
    /// For family 1: the Vorbis-order slot of each WAV-order channel.
    order: Option<Vec<usize>>,
}

// SAFETY: as for the encoder: one heap block, reached only through `&mut self`.
unsafe impl Send for OpusIn {}
// SAFETY: no `&self` method touches the decoder state.
unsafe impl Sync for OpusIn {}

impl Drop for OpusIn {
    fn drop(&mut self) {
        // SAFETY: made by opus_multistream_decoder_create, freed once here.
        unsafe { unsafe_libopus::opus_multistream_decoder_destroy(self.dec) }
    }
}

impl OpusIn {
    /// From the stream's identification header ("OpusHead", RFC 7845 section 5.1).
    pub(crate) fn new(head: &[u8]) -> Result<Self, String> {
        let bad = || "a damaged Opus identification header".to_string();
        if head.len() < 19 || &head[..8] != b"OpusHead" {
            return Err(bad());
        }
        if head[8] >> 4 != 0 {
            return Err(format!(
                "Opus header version {} (this reader knows 0.x)",
                head[8]
            ));
        }
        let channels = head[9] as usize;
        let pre_skip = u16::from_le_bytes([head[10], head[11]]) as u64;
        let input_rate = u32::from_le_bytes([head[12], head[13], head[14], head[15]]);
        let gain_q8 = i16::from_le_bytes([head[16], head[17]]);
        let family = head[18];
        let (streams, coupled, mapping) = if family == 0 {
            if !(1..=2).contains(&channels) {
                return Err(bad());
            }
            (1, channels as i32 - 1, vec![0u8, 1][..channels].to_vec())
        } else {
            if head.len() < 21 + channels || channels == 0 {
                return Err(bad());
            }
            (
                head[19] as i32,
                head[20] as i32,
                head[21..21 + channels].to_vec(),
            )
        };
        let rate = if OPUS_RATES.contains(&input_rate) {
            input_rate
        } else {
            48_000
        };
        let mut err = 0i32;
        // SAFETY: `mapping` holds `channels` bytes; `err` is a valid out-pointer.
        let dec = unsafe {
            unsafe_libopus::opus_multistream_decoder_create(
                rate as i32,
                channels as i32,
                streams,
                coupled,
                mapping.as_ptr(),
                &mut err,
            )
        };
        if dec.is_null() || err != unsafe_libopus::OPUS_OK {
            return Err(format!(
                "the Opus decoder refused the stream: {}",
                opus_error(err)
            ));
        }
        let div = 48_000 / rate as u64;
        Ok(Self {
            dec,
            channels,
            rate,
            div,
            // Q7.8 dB, which decoders must apply (RFC 7845 section 5.1).
            gain: 10f32.powf(gain_q8 as f32 / 256.0 / 20.0),
            buf: vec![0.0; 5760 / div as usize * channels],
            to_skip: pre_skip,
            pre_skip,
            order: if family == 1 {
                vorbis_order(channels).map(|o| {
                    let mut inv = vec![0; o.len()];
                    for (i, &c) in o.iter().enumerate() {
                        inv[c] = i;
                    }
                    inv
                })
            } else {
                None
            },
        })
    }

    /// The rate frames come out at.
    pub(crate) fn rate(&self) -> u32 {
        self.rate
    }

    /// The stream's pre-skip, in 48 kHz samples.
    pub(crate) fn pre_skip(&self) -> u64 {
        self.pre_skip
    }

    /// Decodes one packet, dropping `trim_start`/`trim_end` 48 kHz samples from its ends (and
    /// the stream's pre-skip, which symphonia 0.6 leaves in), and appends the interleaved
    /// frames to `out`.
    pub(crate) fn decode(
        &mut self,
        packet: &[u8],
        trim_start: u64,
        trim_end: u64,
        out: &mut Vec<f32>,
    ) -> Result<(), String> {
        let max_frames = (self.buf.len() / self.channels) as i32;
        // SAFETY: `buf` holds `max_frames` frames of `channels` floats.
        let n = unsafe {
            unsafe_libopus::opus_multistream_decode_float(
                self.dec,
                packet.as_ptr(),
                packet.len() as i32,
                self.buf.as_mut_ptr(),
                max_frames,
                0,
            )
        };
        if n < 0 {
            return Err(opus_error(n));
        }
        let n = n as usize;
        // The pre-skip counts once whether or not the demuxer also reports it as a trim.
        let skip = trim_start.max(self.to_skip);
        self.to_skip = self.to_skip.saturating_sub(n as u64 * self.div);
        let start = ((skip / self.div) as usize).min(n);
        let end = n.saturating_sub((trim_end / self.div) as usize).max(start);
        let frames = &self.buf[start * self.channels..end * self.channels];
        let at = out.len();
        match &self.order {
            None => out.extend_from_slice(frames),
            Some(inv) => {
                for f in frames.chunks_exact(self.channels) {
                    out.extend(inv.iter().map(|&i| f[i]));
                }
            }
        }
        if self.gain != 1.0 {
            out[at..].iter_mut().for_each(|x| *x *= self.gain);
        }
        Ok(())
    }
}
