//! `--workspace` through the real binary: a folder that is not there is an error, not an
//! empty workspace; a name not found says which workspace files do not validate.

use airlock_tests::{Sandbox, text};

#[test]
fn a_mistyped_workspace_is_an_error() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let file = sb.write("a-file.toml", "name = \"x\"\n").expect("write");
    let missing = file.with_file_name("no-such-folder");
    for (dir, says) in [
        (&missing, "is not a folder (it does not exist)"),
        (&file, "is not a folder"),
    ] {
        let out = sb
            .airlock(["--workspace".as_ref(), dir.as_os_str(), "tasks".as_ref()])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        assert!(text(&out).contains(says), "{}", text(&out));
    }
}

#[test]
fn a_name_not_found_shows_the_workspace_files_that_do_not_validate() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let dir = sb.db().with_file_name("ws");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("brok.toml"), "name = \"brok\"\nstart = \n").expect("write");
    let out = sb
        .airlock([
            "--workspace".as_ref(),
            dir.as_os_str(),
            "run".as_ref(),
            "brok".as_ref(),
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("no workflow `brok`")
            && said.contains("do not validate")
            && said.contains("brok.toml:2:"),
        "{said}"
    );
}
