//! The short soak CI runs (the 10,000-boot run is `cargo xtask soak --boots 10000`), and the
//! control run without the gate, which must show the bug the gate fixes.

use acpigate_sim::smbus::frudevice::FruDeviceProbe;
use acpigate_tests::soak::{self, SoakOptions};
use acpigate_tests::world::WorldOptions;
use anyhow::Result;

/// The two runs one after the other: the control run keeps the bus busy with ungated reads,
/// and timing under someone else's load is not what the gated run checks.
/// (A tokio mutex: no poisoning, and it may be held across the runs' awaits.)
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_soak_with_the_gate_loses_nothing() -> Result<()> {
    let _alone = ONE_AT_A_TIME.lock().await;
    let s = soak::run(&SoakOptions {
        boots: 25,
        seed: 20261124,
        world: WorldOptions {
            ipmi: true,
            ..WorldOptions::default()
        },
        verbose: false,
    })
    .await?;
    println!("{s}");
    assert!(s.boots >= 25, "{s}");
    assert!(s.clean(), "{s}");
    assert_eq!(s.dimms_present, s.boots * 4, "{s}");
    assert!(s.via_ipmi > 0, "no boot reported over IPMI: {s}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_gate_the_model_loses_dimms() -> Result<()> {
    let _alone = ONE_AT_A_TIME.lock().await;
    let s = soak::run(&SoakOptions {
        boots: 3,
        seed: 3,
        world: WorldOptions {
            gate: false,
            ..WorldOptions::default()
        },
        verbose: false,
    })
    .await?;
    println!("{s}");
    assert!(s.dimms_lost > 0, "{s}");
    assert!(s.collisions > 0, "{s}");
    Ok(())
}

/// entity-manager's FruDevice, the first ungated master most OpenBMC images carry: probing the
/// DIMM bus at power-on it collides with the firmware's SPD reads and DIMMs go missing even
/// with the gate on; with its blocklist holding the bus as a whole, nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frudevice_unblocked_loses_dimms_and_blocked_loses_none() -> Result<()> {
    let _alone = ONE_AT_A_TIME.lock().await;
    let run = |blocked| SoakOptions {
        boots: 8,
        seed: 7,
        world: WorldOptions {
            frudevice: Some(FruDeviceProbe { blocked }),
            ..WorldOptions::default()
        },
        verbose: false,
    };
    let unblocked = soak::run(&run(false)).await?;
    println!("FruDevice not blocked: {unblocked}");
    assert!(unblocked.dimms_lost > 0, "{unblocked}");
    assert!(unblocked.collisions > 0, "{unblocked}");
    // The gate still did its part: no BMC read outside settled S0.
    assert_eq!(unblocked.late_bmc_transfers, 0, "{unblocked}");
    let blocked = soak::run(&run(true)).await?;
    println!("FruDevice blocked: {blocked}");
    assert!(blocked.clean(), "{blocked}");
    assert_eq!(blocked.dimms_present, blocked.boots * 4, "{blocked}");
    Ok(())
}
